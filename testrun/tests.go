package testrun

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/labctl/lab/providers"
	"github.com/labctl/lab/topology"
)

// TestResult is how one test ended.
type TestResult struct {
	Name    string  `json:"name"`
	Node    string  `json:"node,omitempty"` // "" on the host
	Run     string  `json:"run"`
	Passed  bool    `json:"passed"`
	Code    int     `json:"exit_code"`
	Error   string  `json:"error,omitempty"` // it could not run, or was cut short
	Seconds float64 `json:"seconds"`
	Log     string  `json:"log"` // its output, relative to the artifacts folder
	Tail    string  `json:"-"`   // the last lines of its output
}

// Failure says why a test failed, for people and for JUnit.
func (r TestResult) Failure() string {
	if r.Error != "" {
		return r.Error
	}
	return fmt.Sprintf("exit %d", r.Code)
}

// test is one test to run: a shell command, or (from the command line) an
// argv run as it is.
type test struct {
	topology.Test
	argv []string
}

// tests are what a run runs: the command after --, else the lab file's.
func tests(o Options) []test {
	if len(o.Argv) > 0 {
		return []test{{Test: topology.Test{Name: strings.Join(o.Argv, " "), Run: strings.Join(o.Argv, " ")}, argv: o.Argv}}
	}
	out := make([]test, len(o.Top.Tests))
	for i, t := range o.Top.Tests {
		t.Name = t.Title(i)
		out[i] = test{Test: t}
	}
	return out
}

// runner runs the tests in file order, every one even after one fails.
type runner struct {
	o       Options
	dir     string   // the artifacts folder
	hostEnv []string // LAB_* facts and LAB_INVENTORY, for host commands
}

func (r *runner) runAll(ctx context.Context) []TestResult {
	var results []TestResult
	for i, t := range tests(r.o) {
		results = append(results, r.run(ctx, i, t))
	}
	return results
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// testLog is where test i's output goes, in the artifacts folder.
func testLog(i int, name string) string {
	slug := strings.Trim(unsafeChars.ReplaceAllString(name, "-"), "-")
	if len(slug) > 40 {
		slug = slug[:40]
	}
	return filepath.Join("tests", fmt.Sprintf("%02d-%s.log", i+1, slug))
}

func (r *runner) run(ctx context.Context, i int, t test) TestResult {
	res := TestResult{Name: t.Name, Node: t.Node, Run: t.Run, Log: testLog(i, t.Name)}
	fmt.Fprintf(r.o.Out, "=== RUN   %s\n", t.Name)
	if ctx.Err() != nil {
		res.Error, res.Code = "not run: "+why(ctx), -1
		r.report(&res)
		return res
	}
	f, err := os.Create(filepath.Join(r.dir, res.Log))
	if err != nil {
		res.Error, res.Code = err.Error(), -1
		r.report(&res)
		return res
	}
	defer f.Close()
	tail := &tailBuffer{max: 64 << 10}
	start := time.Now()
	if t.Patience() > 0 {
		r.until(ctx, t, &res, f, tail)
	} else {
		r.once(ctx, t, &res, &lockedWriter{w: io.MultiWriter(f, tail, r.o.Out)})
	}
	res.Seconds = time.Since(start).Seconds()
	res.Passed = res.Error == "" && res.Code == 0
	res.Tail = tail.lastLines(20)
	r.report(&res)
	return res
}

// once runs the test once, its output to w; res gets its exit code and
// what kept it from running or ending.
func (r *runner) once(ctx context.Context, t test, res *TestResult, w io.Writer) {
	tctx, cancel := context.WithTimeout(ctx, t.Limit())
	defer cancel()
	var err error
	if t.Node != "" {
		res.Code, err = r.inNode(tctx, t, w)
	} else {
		res.Code, err = r.onHost(tctx, t, w)
	}
	res.Error = ""
	switch {
	case ctx.Err() != nil:
		res.Error = "cut short: " + why(ctx)
	case tctx.Err() != nil:
		res.Error = fmt.Sprintf("timed out after %s (its timeout)", t.Limit())
	case err != nil:
		res.Error = err.Error()
	}
	if res.Error != "" {
		fmt.Fprintf(w, "lab test: %s\n", res.Error)
	}
}

// until runs a test with within: again every second while it fails, until
// it passes or its time is up. Every run's output goes to its log; the
// screen and the report's tail get the last run's.
func (r *runner) until(ctx context.Context, t test, res *TestResult, log io.Writer, tail *tailBuffer) {
	deadline := time.Now().Add(t.Patience())
	for runs := 1; ; runs++ {
		var out bytes.Buffer
		r.once(ctx, t, res, &lockedWriter{w: io.MultiWriter(log, &out)})
		last := res.Error == "" && res.Code == 0 || ctx.Err() != nil || !time.Now().Before(deadline)
		if !last {
			fmt.Fprintf(log, "lab test: run %d: %s; again in 1s (within %s)\n", runs, res.Failure(), t.Within)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
				continue
			}
		}
		_, _ = io.Copy(io.MultiWriter(r.o.Out, tail), &out)
		if (res.Error != "" || res.Code != 0) && ctx.Err() == nil {
			res.Error = fmt.Sprintf("%s, still after %s (its within) and %d runs", res.Failure(), t.Within, runs)
			fmt.Fprintf(io.MultiWriter(log, r.o.Out, tail), "lab test: %s\n", res.Error)
		}
		return
	}
}

func (r *runner) report(res *TestResult) {
	if res.Passed {
		fmt.Fprintf(r.o.Out, "--- PASS: %s (%.2fs)\n", res.Name, res.Seconds)
		return
	}
	fmt.Fprintf(r.o.Out, "--- FAIL: %s (%s, %.2fs)\n", res.Name, res.Failure(), res.Seconds)
}

// why says why a run's context ended.
func why(ctx context.Context) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return "lab test's --timeout was reached"
	}
	return "lab test was interrupted"
}

// onHost runs a test on the host, in the lab file's folder, in its own
// process group so that a timeout ends what it started too.
func (r *runner) onHost(ctx context.Context, t test, w io.Writer) (int, error) {
	argv := t.argv
	if argv == nil {
		argv = []string{"/bin/sh", "-c", t.Run}
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = r.o.Top.Dir
	cmd.Env = append(os.Environ(), r.hostEnv...)
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit) && exit.ExitCode() >= 0:
		return exit.ExitCode(), nil
	case errors.As(err, &exit):
		return -1, fmt.Errorf("killed: %s", exit.ProcessState)
	case err != nil && ctx.Err() == nil:
		return -1, err
	case err != nil:
		return -1, nil
	}
	return 0, nil
}

// inNode runs a test in a node, like lab exec NODE -- sh -c RUN.
func (r *runner) inNode(ctx context.Context, t test, w io.Writer) (int, error) {
	tgt, err := r.o.Engine.Target(ctx, r.o.Top, t.Node)
	if err != nil {
		return -1, err
	}
	code, err := tgt.Provider.Exec(ctx, tgt.Node, []string{"/bin/sh", "-c", t.Run}, providers.ExecIO{Stdout: w, Stderr: w, Env: tgt.Env})
	if err != nil && ctx.Err() != nil {
		return -1, nil
	}
	return code, err
}
