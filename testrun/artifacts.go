package testrun

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/labctl/lab/engine"
	"github.com/labctl/lab/providers"
)

// The artifacts folder:
//
//	result.json          outcome, up error, each test's result
//	up-error.txt         why the lab did not come up (when it did not)
//	lab.yaml             the lab file
//	events.jsonl         the run's events, as lab up --json prints them
//	status.json          lab status --json, at the end of the run
//	nodes/NODE/journal.txt    the node's whole journal
//	nodes/NODE/provision.log  its provisioning log
//	tests/NN-NAME.log    each test's output

// eventLog keeps the run's events and passes them on to the progress UI.
type eventLog struct {
	mu     sync.Mutex
	events []engine.Event
	next   engine.Sink
}

func (l *eventLog) Emit(e engine.Event) {
	l.mu.Lock()
	l.events = append(l.events, e)
	next := l.next
	l.mu.Unlock()
	if next != nil {
		next.Emit(e)
	}
}

// detach stops passing events on.
func (l *eventLog) detach() {
	l.mu.Lock()
	l.next = nil
	l.mu.Unlock()
}

func (l *eventLog) jsonLines() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, e := range l.events {
		_ = enc.Encode(e)
	}
	return b.Bytes()
}

// collect writes the artifacts; it goes on past what fails and returns the
// first error.
func collect(ctx context.Context, o Options, dir string, log *eventLog, res *Result) error {
	var errs []error
	note := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	note(writeJSON(filepath.Join(dir, "result.json"), res))
	if res.UpError != "" {
		note(os.WriteFile(filepath.Join(dir, "up-error.txt"), []byte(res.UpError+"\n"), 0o644))
	}
	if b, err := os.ReadFile(o.Top.File); err == nil {
		note(os.WriteFile(filepath.Join(dir, filepath.Base(o.Top.File)), b, 0o644))
	}
	note(os.WriteFile(filepath.Join(dir, "events.jsonl"), log.jsonLines(), 0o644))
	report, _, err := o.Engine.Report(ctx, o.Top)
	if err != nil {
		note(fmt.Errorf("status: %w", err))
		return errors.Join(errs...)
	}
	note(writeJSON(filepath.Join(dir, "status.json"), report))
	note(nodeArtifacts(ctx, o, dir, report.Nodes))
	return errors.Join(errs...)
}

// nodeArtifacts saves each node's journal and provisioning log, nodes in
// parallel.
func nodeArtifacts(ctx context.Context, o Options, dir string, nodes []engine.NodeStatus) error {
	var g errgroup.Group
	g.SetLimit(4)
	for _, n := range nodes {
		g.Go(func() error {
			nd := filepath.Join(dir, "nodes", n.Name)
			if err := os.MkdirAll(nd, 0o755); err != nil {
				return err
			}
			if b, err := os.ReadFile(o.Engine.LogPath(n.Name)); err == nil {
				if err := os.WriteFile(filepath.Join(nd, "provision.log"), b, 0o644); err != nil {
					return err
				}
			}
			return os.WriteFile(filepath.Join(nd, "journal.txt"), journal(ctx, o, n), 0o644)
		})
	}
	return g.Wait()
}

// journal is a node's whole journal, or a line saying why there is none.
func journal(ctx context.Context, o Options, n engine.NodeStatus) []byte {
	if n.State != "running" {
		return []byte(fmt.Sprintf("lab test: node %s is %s: no journal to read\n", n.Name, n.State))
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	tgt, err := o.Engine.Target(ctx, o.Top, n.Name)
	if err != nil {
		return []byte("lab test: " + err.Error() + "\n")
	}
	var out, stderr bytes.Buffer
	code, err := tgt.Provider.Exec(ctx, tgt.Node, []string{"journalctl", "--no-pager", "-o", "short-precise"}, providers.ExecIO{Stdout: &out, Stderr: &stderr})
	switch {
	case err != nil:
		fmt.Fprintf(&out, "lab test: journalctl in %s: %v\n", n.Name, err)
	case code != 0:
		fmt.Fprintf(&out, "lab test: journalctl in %s: exit %d: %s\n", n.Name, code, strings.TrimSpace(stderr.String()))
	}
	return out.Bytes()
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
