// Package testrun is lab test: a lab in a CI pipeline as one command. It
// brings the lab up (or starts it from a snapshot), runs the tests, keeps
// what explains a failure (journals, provisioning logs, status, events,
// each test's output), writes JUnit, and destroys the lab, even when it is
// interrupted.
package testrun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/labctl/lab/engine"
	"github.com/labctl/lab/provision"
	"github.com/labctl/lab/topology"
)

// Options are what lab test was asked to do.
type Options struct {
	Engine *engine.Engine
	Top    *topology.Topology
	From   string // a whole-lab snapshot to start from (up --from)
	// DropFrom: that snapshot was imported from a file for this run; its
	// nodes take its disks, and it is removed at the end.
	DropFrom bool
	Argv     []string // the command after --, run instead of the file's tests
	// Keep leaves the lab up; KeepOnFailure only when the run did not pass.
	Keep, KeepOnFailure bool
	// Artifacts is where to put them; "" means .lab/artifacts/TIME, and
	// then only when the run did not pass.
	Artifacts string
	JUnit     string        // "": no JUnit file
	Timeout   time.Duration // for the whole run, up included
	UI        engine.Sink   // progress of up, for people
	UpDone    func()        // called once up has ended, before the tests (UI sees no more events)
	Out       io.Writer     // the tests' output, and what the run says
}

// Outcome is how a run ended; cmd/lab turns it into the exit code.
type Outcome string

const (
	Passed      Outcome = "passed"
	Failed      Outcome = "failed"      // a test failed
	NotUp       Outcome = "not up"      // the lab never came up
	BadLab      Outcome = "bad lab"     // the lab file or a snapshot was refused
	Interrupted Outcome = "interrupted" // Ctrl-C or SIGTERM
)

// Result is what a run did.
type Result struct {
	Lab       string       `json:"lab"`
	Outcome   Outcome      `json:"outcome"`
	UpError   string       `json:"up_error,omitempty"`
	UpSeconds float64      `json:"up_seconds"`
	Tests     []TestResult `json:"tests"`
	Artifacts string       `json:"-"` // the folder, when kept
	Kept      bool         `json:"kept"`
	UpErr     error        `json:"-"`
}

// Run runs lab test. Its error is what went wrong around the tests
// (artifacts, JUnit, destroy); the outcome says how the tests went.
func Run(ctx context.Context, o Options) (*Result, error) {
	started := time.Now()
	res := &Result{Lab: o.Top.Name}
	dir, asked := o.Artifacts, o.Artifacts != ""
	if !asked {
		dir = filepath.Join(o.Engine.Store.Dir, "artifacts", started.Format("20060102-150405"))
	}
	if err := os.MkdirAll(filepath.Join(dir, "tests"), 0o755); err != nil {
		return res, fmt.Errorf("artifacts: %w", err)
	}
	log := &eventLog{next: o.UI}
	o.Engine.Events = log
	st, err := o.Engine.Store.Load()
	if err != nil {
		return res, err
	}
	existed := st != nil && len(st.Nodes) > 0

	rctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	res.UpErr = up(rctx, o)
	res.UpSeconds = time.Since(started).Seconds()
	log.detach()
	if o.UpDone != nil {
		o.UpDone()
	}
	if res.UpErr == nil {
		r, err := newRunner(rctx, o, dir)
		if err == nil {
			res.Tests = r.runAll(rctx)
		} else {
			res.UpErr = err
		}
	}
	if res.UpErr != nil {
		for i, t := range tests(o) {
			res.Tests = append(res.Tests, TestResult{Name: t.Name, Node: t.Node, Run: t.Run, Code: -1,
				Error: "not run: the lab did not come up", Log: testLog(i, t.Name)})
		}
	}
	res.Outcome = outcome(ctx, rctx, res)
	if res.UpErr != nil {
		res.UpError = res.UpErr.Error()
		if rctx.Err() != nil && ctx.Err() == nil {
			res.UpError = fmt.Sprintf("not up within --timeout %s: %s", o.Timeout, res.UpError)
		}
	}
	// What follows runs even after Ctrl-C or SIGTERM, within its own time.
	cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Minute)
	defer ccancel()
	return res, finish(cctx, o, dir, asked, existed, started, log, res)
}

func up(ctx context.Context, o Options) error {
	_, err := o.Engine.Up(ctx, o.Top, engine.UpOptions{From: o.From, TakeFrom: o.DropFrom})
	return err
}

func newRunner(ctx context.Context, o Options, dir string) (*runner, error) {
	_, lab, err := o.Engine.Status(ctx, o.Top)
	if err != nil {
		return nil, err
	}
	paths, err := o.Engine.WriteHostFiles(lab)
	if err != nil {
		return nil, err
	}
	facts := provision.HostFacts(lab)
	facts["LAB_INVENTORY"] = paths["inventory.yml"]
	facts["LAB_SSH_CONFIG"] = paths["ssh-config"]
	if abs, err := filepath.Abs(o.Top.File); err == nil {
		facts["LAB_FILE"] = abs
	}
	return &runner{o: o, dir: dir, hostEnv: provision.Env(facts)}, nil
}

func outcome(ctx, rctx context.Context, res *Result) Outcome {
	var bad *engine.UsageError
	var unknown *engine.UnknownNodeError
	switch {
	case ctx.Err() != nil:
		return Interrupted
	case res.UpErr != nil && (errors.As(res.UpErr, &bad) || errors.As(res.UpErr, &unknown) || topology.IsTopologyError(res.UpErr)):
		return BadLab
	case res.UpErr != nil:
		return NotUp
	}
	for _, t := range res.Tests {
		if !t.Passed {
			return Failed
		}
	}
	return Passed
}

// finish keeps the artifacts (always when the run did not pass), writes
// JUnit, and destroys the lab unless it is to be kept.
func finish(ctx context.Context, o Options, dir string, asked, existed bool, started time.Time, log *eventLog, res *Result) error {
	var errs []error
	switch {
	case res.Outcome == BadLab && !asked:
		// Nothing was made: the message says it all.
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
		}
	case res.Outcome != Passed || asked:
		if err := collect(ctx, o, dir, log, res); err != nil {
			errs = append(errs, fmt.Errorf("artifacts: %w", err))
		}
		res.Artifacts = dir
	default:
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
		}
	}
	if o.JUnit != "" {
		if err := writeJUnit(o.JUnit, o.Top.Name, started, res); err != nil {
			errs = append(errs, fmt.Errorf("junit: %w", err))
		}
	}
	res.Kept = o.Keep || existed || (o.KeepOnFailure && res.Outcome != Passed)
	summary(o.Out, res, existed)
	// A snapshot imported for this run gave its disks to the nodes: it goes
	// even with a kept lab (the file it came from is still there).
	if o.DropFrom {
		if err := o.Engine.SnapshotRemove(o.From); err != nil {
			errs = append(errs, fmt.Errorf("snapshot %s: %w", o.From, err))
		}
	}
	if !res.Kept {
		if err := o.Engine.Destroy(ctx, o.Top.Name, false); err != nil {
			errs = append(errs, fmt.Errorf("destroy: %w", err))
		}
	}
	return errors.Join(errs...)
}

// summary says how the run went, where its artifacts are, and how to get
// into a kept lab.
func summary(w io.Writer, res *Result, existed bool) {
	failed := 0
	var names []string
	for _, t := range res.Tests {
		if !t.Passed {
			failed++
			names = append(names, t.Name)
		}
	}
	sort.Strings(names)
	switch res.Outcome {
	case Passed:
		fmt.Fprintf(w, "lab test: %d tests passed\n", len(res.Tests))
	case Failed:
		fmt.Fprintf(w, "lab test: %d of %d tests failed: %q\n", failed, len(res.Tests), names)
	case Interrupted:
		if res.UpError != "" {
			fmt.Fprintf(w, "lab test: interrupted while the lab came up\n")
		} else {
			fmt.Fprintf(w, "lab test: interrupted (%d of %d tests had failed)\n", failed, len(res.Tests))
		}
	default:
		fmt.Fprintf(w, "lab test: the lab did not come up: %s\n", res.UpError)
	}
	if res.Artifacts != "" {
		fmt.Fprintf(w, "lab test: artifacts in %s\n", res.Artifacts)
	}
	switch {
	case existed:
		fmt.Fprintf(w, "lab test: lab %s was up before this run: left up\n", res.Lab)
	case res.Kept:
		fmt.Fprintf(w, "lab test: lab %s is kept: lab status, lab ssh NODE, lab logs NODE; lab destroy when done\n", res.Lab)
	}
}
