// Package provision turns running nodes into a working cluster: it gives
// every node what it receives from lab (names, DNS, facts, keys), runs each
// role's steps (shell, inline, file, ansible) in order with their output
// logged and streamed, records what ran with a hash of its inputs so that
// the next lab up runs only what is new, changed or failed, and runs health
// checks inside the node. The engine calls it with a Request it owns.
package provision

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"time"

	"github.com/labctl/lab/providers"
	"github.com/labctl/lab/state"
	"github.com/labctl/lab/topology"
)

// Request is everything provisioning needs for one node. The engine fills
// it; provisioning owns it, so this package needs nothing of the engine.
type Request struct {
	Lab       *topology.Lab
	Node      topology.Node
	Target    providers.Node
	Provider  providers.Provider
	Previous  *state.Provisioning // nil when never provisioned
	Force     bool                // run every step, whatever the record says
	Inventory string              // the lab's Ansible inventory (.lab/inventory.ini)
	Log       io.Writer           // the node's log file
	Progress  func(msg string)
}

// Runner runs provisioning steps and health checks in nodes.
type Runner struct {
	// HealthPoll is how often failing health checks are tried again.
	HealthPoll time.Duration
}

// New returns a Runner.
func New() *Runner { return &Runner{HealthPoll: 500 * time.Millisecond} }

// StepDir is where scripts are copied in nodes.
const StepDir = "/var/lib/lab/steps"

// Provision runs the steps that need running and returns the new record.
func (r *Runner) Provision(ctx context.Context, req Request) (*state.Provisioning, error) {
	n := req.Node
	top := req.Lab.Topology
	facts := Facts(req.Lab, n)
	steps := n.Spec.Provision
	rec := &state.Provisioning{Steps: make([]state.StepRecord, len(steps))}
	logw := req.Log
	if logw == nil {
		logw = io.Discard
	}
	progress := req.Progress
	if progress == nil {
		progress = func(string) {}
	}
	for i, s := range steps {
		label := Label(i, s)
		hash, err := StepHash(top, s, facts)
		if err != nil {
			return rec, &StepError{Node: n.Name, Step: label, Cause: err}
		}
		var prev *state.StepRecord
		if req.Previous != nil && i < len(req.Previous.Steps) {
			prev = &req.Previous.Steps[i]
		}
		if !req.Force && s.Run != topology.RunAlways && prev != nil && prev.OK && prev.Hash == hash {
			rec.Steps[i] = *prev
			continue
		}
		progress(label)
		fmt.Fprintf(logw, "==> %s %s (run: %s)\n", time.Now().UTC().Format(time.RFC3339), label, s.Run)
		sink := &lineSink{log: logw, progress: func(line string) { progress("│ " + line) }}
		code, err := r.runStep(ctx, req, i, s, facts, sink)
		tail := sink.flush()
		if err == nil && code != 0 {
			err = &StepError{Node: n.Name, Step: label, Code: code, Tail: tail}
		} else if err != nil {
			err = &StepError{Node: n.Name, Step: label, Cause: err, Tail: tail}
		}
		if err != nil {
			fmt.Fprintf(logw, "<== %s failed: %v\n", label, err)
			rec.Steps[i] = state.StepRecord{Hash: hash, At: time.Now().UTC(), OK: false}
			// Later steps keep their old records so a resumed run can skip them
			// only if they still match; they have not run this time.
			for j := i + 1; j < len(steps); j++ {
				if req.Previous != nil && j < len(req.Previous.Steps) {
					rec.Steps[j] = req.Previous.Steps[j]
				}
			}
			return rec, err
		}
		fmt.Fprintf(logw, "<== %s ok\n", label)
		rec.Steps[i] = state.StepRecord{Hash: hash, At: time.Now().UTC(), OK: true}
	}
	rec.Done = true
	rec.Finished = time.Now().UTC()
	return rec, nil
}

func (r *Runner) runStep(ctx context.Context, req Request, i int, s topology.Step, facts map[string]string, out io.Writer) (int, error) {
	p, t := req.Provider, req.Target
	env := Env(facts)
	for k, v := range s.Env {
		env = append(env, k+"="+os.Expand(v, func(name string) string { return facts[name] }))
	}
	eio := providers.ExecIO{Stdout: out, Stderr: out, Env: env, Dir: "/root"}
	switch {
	case s.Shell != "":
		b, err := os.ReadFile(req.Lab.Topology.Path(s.Shell))
		if err != nil {
			return -1, err
		}
		dst := path.Join(StepDir, fmt.Sprintf("%s-%d-%s", req.Node.Role, i+1, filepath.Base(s.Shell)))
		if err := p.CopyIn(ctx, t, bytes.NewReader(b), dst, 0o755); err != nil {
			return -1, err
		}
		cmd := []string{dst}
		if !bytes.HasPrefix(b, []byte("#!")) {
			cmd = []string{"/bin/sh", dst}
		}
		return p.Exec(ctx, t, cmd, eio)
	case s.Inline != "":
		return p.Exec(ctx, t, []string{"/bin/sh", "-e", "-c", s.Inline}, eio)
	case s.Ansible != "":
		return runPlaybook(ctx, req, s.Ansible, out)
	default:
		return r.copyFile(ctx, req, s.File, out)
	}
}

// runPlaybook runs an Ansible playbook from the host against this node,
// through the lab's inventory (SSH with the lab's key).
func runPlaybook(ctx context.Context, req Request, playbook string, out io.Writer) (int, error) {
	if req.Inventory == "" {
		return -1, fmt.Errorf("no inventory for ansible")
	}
	if _, err := exec.LookPath("ansible-playbook"); err != nil {
		return -1, fmt.Errorf("ansible-playbook is not installed on this machine (Debian package ansible-core)")
	}
	cmd := exec.CommandContext(ctx, "ansible-playbook", "-i", req.Inventory, "--limit", req.Node.Name, req.Lab.Topology.Path(playbook))
	cmd.Dir = req.Lab.Topology.Dir
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8", "ANSIBLE_HOST_KEY_CHECKING=False", "ANSIBLE_NOCOLOR=1",
		"ANSIBLE_RETRY_FILES_ENABLED=0", "ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3")
	cmd.Stdout, cmd.Stderr = out, out
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return -1, err
	}
	return 0, nil
}
