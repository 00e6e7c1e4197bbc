// Package labtest runs real labs from tests: it builds the lab binary once,
// writes a lab folder, runs lab commands as a user would, and after every
// test destroys the lab and checks that nothing of it is left on the machine
// (containers, bridges, dnsmasq, firewall rules, mounts, state, locks).
//
// Integration tests are skipped with -short; without -short they need root
// and LXC, and fail (not skip) when those are missing, so CI cannot pass
// without running them.
package labtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/labctl/lab/internal/spawn"
	"github.com/labctl/lab/state"
	"github.com/stretchr/testify/require"
)

// Integration marks a test that touches the machine.
func Integration(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: runs without -short, as root, with LXC")
	}
	if os.Geteuid() != 0 {
		t.Fatal("integration tests need root (run make test as root, or go test -short for unit tests only)")
	}
	for _, bin := range []string{"lxc-start", "mmdebstrap", "dnsmasq", "nft", "ip"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("integration tests need %s: run make setup", bin)
		}
	}
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Root is the repository's top folder.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// Binary builds bin/lab once per test process and returns its path
// (with the race detector when LAB_TEST_RACE is set).
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		removeStaleBinaries()
		dir, err := os.MkdirTemp("", fmt.Sprintf("labtest-bin-%d-", os.Getpid()))
		if err != nil {
			buildErr = err
			return
		}
		// Others may run it: the tests of lab without root run it as a user.
		if err := os.Chmod(dir, 0o755); err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "lab")
		args := []string{"build", "-o", binPath}
		if os.Getenv("LAB_TEST_RACE") != "" {
			args = append(args, "-race") // LAB_TEST_RACE=1: lab itself under the race detector
		}
		cmd := exec.Command("go", append(args, "./cmd/lab")...)
		cmd.Dir = Root()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		// Its network helper beside it, as make build puts it.
		cmd = exec.Command("go", "build", "-o", filepath.Join(dir, "lab-net"), "./cmd/lab-net")
		cmd.Dir = Root()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return binPath
}

// removeStaleBinaries removes the lab binaries that test processes which
// have ended built (labtest-bin-PID-*): a process cannot remove its own
// when it ends, so the next one does.
func removeStaleBinaries() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "labtest-bin-*"))
	for _, d := range dirs {
		f := strings.SplitN(strings.TrimPrefix(filepath.Base(d), "labtest-bin-"), "-", 2)
		pid, err := strconv.Atoi(f[0])
		if len(f) == 2 && err == nil && !spawn.Alive(pid) {
			_ = os.RemoveAll(d)
		}
	}
}

// Lab is a lab folder under test.
type Lab struct {
	T    testing.TB
	Dir  string
	Name string
	Bin  string
	Env  []string

	onFailure []func() // OnFailure's commands, run by cleanup
}

// New writes files (lab.yaml and any scripts, by relative path) into a new
// folder and registers a cleanup that destroys the lab and checks for leaks.
func New(t testing.TB, name string, files map[string]string) *Lab {
	t.Helper()
	l := &Lab{T: t, Dir: t.TempDir(), Name: name, Bin: Binary(t)}
	for p, content := range files {
		l.Write(p, content)
	}
	t.Cleanup(func() { l.cleanup() })
	return l
}

// cleanup destroys the lab; if that fails or leaves anything, the test
// fails, and the lab is removed by name without its state so that no test
// ever leaks into the next.
func (l *Lab) cleanup() {
	t := l.T
	if _, err := os.Stat(filepath.Join(l.Dir, ".lab")); err == nil {
		if t.Failed() && l.hasNodes() {
			for _, f := range l.onFailure {
				f()
			}
		}
		if _, stderr, code := l.Run("destroy"); code != 0 {
			t.Errorf("cleanup: lab destroy failed (exit %d): %s", code, stderr)
		}
	}
	leaks := Leaks(l.Name, l.Dir)
	if len(leaks) == 0 {
		return
	}
	t.Errorf("lab %s left behind:\n  %s", l.Name, strings.Join(leaks, "\n  "))
	_ = os.RemoveAll(filepath.Join(l.Dir, ".lab"))
	if out, stderr, code := l.Run("destroy", "--name", l.Name); code != 0 {
		t.Errorf("cleanup: lab destroy --name %s failed (exit %d): %s%s", l.Name, code, out, stderr)
	}
	AssertNoLeaks(t, l.Name, l.Dir)
}

// Write writes a file of the lab folder (scripts get mode 0755).
func (l *Lab) Write(rel, content string) {
	p := filepath.Join(l.Dir, rel)
	require.NoError(l.T, os.MkdirAll(filepath.Dir(p), 0o755))
	mode := os.FileMode(0o644)
	if strings.HasSuffix(rel, ".sh") {
		mode = 0o755
	}
	require.NoError(l.T, os.WriteFile(p, []byte(content), mode))
}

// Run runs lab with args in the lab folder: stdout, stderr, exit code.
func (l *Lab) Run(args ...string) (string, string, int) {
	l.T.Helper()
	cmd := exec.Command(l.Bin, args...)
	cmd.Dir = l.Dir
	cmd.Env = append(append(os.Environ(), "CI=true"), l.Env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		l.T.Fatalf("lab %s: %v", strings.Join(args, " "), err)
	}
	l.T.Logf("lab %s → exit %d in %.2fs", strings.Join(args, " "), code, time.Since(start).Seconds())
	return out.String(), errb.String(), code
}

// MustRun runs lab and fails the test unless it exits 0.
func (l *Lab) MustRun(args ...string) string {
	l.T.Helper()
	out, errs, code := l.Run(args...)
	if code != 0 {
		l.T.Fatalf("lab %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// Exec runs a command in a node: its stdout and exit code.
func (l *Lab) Exec(node string, cmd ...string) (string, int) {
	l.T.Helper()
	out, _, code := l.Run(append([]string{"exec", node, "--"}, cmd...)...)
	return out, code
}

// OnFailure logs what a command prints in a node if the test fails: the
// journal of the services a failure is about, so that a failure seen once
// can be explained. It runs when the test ends, before the lab is
// destroyed, and not at all when the test destroyed the lab itself (the
// failure then is about something else, and the nodes are gone).
func (l *Lab) OnFailure(node string, cmd ...string) {
	l.onFailure = append(l.onFailure, func() {
		out, errs, code := l.Run(append([]string{"exec", node, "--"}, cmd...)...)
		l.T.Logf("on failure, %s: %s (exit %d):\n%s%s", node, strings.Join(cmd, " "), code, out, errs)
	})
}

// hasNodes tells whether the lab's state still records a node.
func (l *Lab) hasNodes() bool {
	st, err := state.Open(filepath.Join(l.Dir, ".lab")).Load()
	return err == nil && st != nil && len(st.Nodes) > 0
}

// NodeStatus is a node in `lab status --json`.
type NodeStatus struct {
	Name        string   `json:"name"`
	State       string   `json:"state"`
	Addresses   []string `json:"addresses"`
	Addresses6  []string `json:"addresses6"`
	Provisioned string   `json:"provisioned"`
	ID          string   `json:"id"`
	Privileged  bool     `json:"privileged"`
	Member      string   `json:"member"`
}

// Status returns `lab status --json`'s nodes by name.
func (l *Lab) Status() map[string]NodeStatus {
	l.T.Helper()
	var doc struct {
		Nodes []NodeStatus `json:"nodes"`
	}
	require.NoError(l.T, json.Unmarshal([]byte(l.MustRun("status", "--json")), &doc))
	out := map[string]NodeStatus{}
	for _, n := range doc.Nodes {
		out[n.Name] = n
	}
	return out
}

// InitPID is the host PID of a node's init, or 0 when it is not running: a
// node that was not restarted keeps it.
func (l *Lab) InitPID(node string) int {
	out, err := exec.Command("lxc-info", "-p", "-H", "-n", l.Name+"_"+node).Output()
	if err != nil {
		return 0
	}
	var pid int
	fmt.Sscanf(strings.TrimSpace(string(out)), "%d", &pid)
	return pid
}

// RequireRouteVia checks that the host reaches addr through bridge, before a
// test sends anything there: a lab address must never leave the machine.
func RequireRouteVia(t testing.TB, addr, bridge string) {
	t.Helper()
	out, err := exec.Command("ip", "route", "get", addr).Output()
	require.NoError(t, err)
	require.Contains(t, string(out), "dev "+bridge+" ", "route to %s does not use the lab bridge: %s", addr, out)
}

// AssertNoLeaks fails the test if anything of the lab is left.
func AssertNoLeaks(t testing.TB, name, dir string) {
	t.Helper()
	if leaks := Leaks(name, dir); len(leaks) > 0 {
		t.Errorf("lab %s left behind:\n  %s", name, strings.Join(leaks, "\n  "))
	}
}

// Reaches tells whether a TCP connection to addr (host:port) gets an
// answer, an accept or a refusal, within a second: the node is reached
// (a refusal says nothing listens there); a firewall's drop is silence.
func Reaches(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}
