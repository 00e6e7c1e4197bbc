package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/labctl/lab/labtest"
)

// upUntil starts lab up and sends sig once a stderr line contains marker.
// It returns the exit code and the whole stderr.
func upUntil(t *testing.T, l *labtest.Lab, marker string, sig syscall.Signal) (int, string) {
	t.Helper()
	cmd := exec.Command(l.Bin, "up")
	cmd.Dir = l.Dir
	cmd.Env = append(os.Environ(), "CI=true")
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	var all strings.Builder
	sent := false
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		line := sc.Text()
		all.WriteString(line + "\n")
		if !sent && strings.Contains(line, marker) {
			require.NoError(t, cmd.Process.Signal(sig))
			sent = true
		}
	}
	err = cmd.Wait()
	require.True(t, sent, "lab up never printed %q:\n%s", marker, all.String())
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
	}
	t.Logf("lab up stopped by %v at %q: exit %d", sig, marker, code)
	return code, all.String()
}

func builders() []string {
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		// mmdebstrap, or a layer's install (its unshare and the shell that
		// is PID 1 of its namespace carry the tag; apt and dpkg die with it).
		if err == nil && (strings.HasPrefix(string(b), "mmdebstrap") || strings.Contains(string(b), "/mmdebstrap\x00") || strings.Contains(string(b), "\x00lab-image-layer\x00")) {
			out = append(out, p)
		}
	}
	return out
}

// kill -9 at several moments of up, then up converges and destroy removes
// everything; Ctrl-C stops cleanly and says what is half-done.
func TestIntegrationKilledUpConverges(t *testing.T) {
	labtest.Integration(t)
	l := labtest.New(t, "it-kill", map[string]string{"lab.yaml": `
name: it-kill
networks: [{name: lan, subnet: 10.97.5.0/24}]
nodes:
  - role: db
    packages: [hello]
    provision:
      - inline: echo provisioning db; sleep 2; echo done > /root/db-ok
  - role: app
    count: 2
    after: [db]
    provision:
      - inline: test -f /etc/lab/facts.json && echo ok > /root/app-ok
`})
	// Force a real build of the db image, so there is a build to kill.
	for _, line := range strings.Split(l.MustRun("image", "list"), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.Contains(line, "hello") {
			l.MustRun("image", "rm", f[0])
		}
	}

	// "building with mmdebstrap" (the base, when it is not built yet) or
	// "building over" (the layer of hello).
	code, out := upUntil(t, l, "building ", syscall.SIGKILL)
	assert.Equal(t, 128+9, code)
	assert.Contains(t, out, "image")
	// The builder gets SIGKILL from the kernel when lab dies (Pdeathsig);
	// give the kernel a moment to deliver it, polling rather than guessing.
	for deadline := time.Now().Add(5 * time.Second); len(builders()) > 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	assert.Empty(t, builders(), "the image builder outlived lab")

	code, _ = upUntil(t, l, "network ", syscall.SIGKILL)
	assert.Equal(t, 128+9, code)

	code, _ = upUntil(t, l, " start ", syscall.SIGKILL)
	assert.Equal(t, 128+9, code)

	code, _ = upUntil(t, l, "provisioning db", syscall.SIGKILL)
	assert.Equal(t, 128+9, code)

	// Ctrl-C: stops, saves, names what is not finished.
	code, out = upUntil(t, l, "provisioning db", syscall.SIGINT)
	assert.Equal(t, 1, code)
	assert.Contains(t, out, "interrupted; state saved; not finished:")
	assert.Contains(t, out, "db1")

	// The next up converges to the lab file.
	_, stderr, code := l.Run("up")
	require.Equal(t, 0, code, stderr)
	st := l.Status()
	for _, n := range []string{"db1", "app1", "app2"} {
		assert.Equal(t, "running", st[n].State, n)
		assert.Equal(t, "done", st[n].Provisioned, n)
	}
	o, _ := l.Exec("db1", "cat", "/root/db-ok")
	assert.Equal(t, "done\n", o)
	o, _ = l.Exec("db1", "hello")
	assert.Equal(t, "Hello, world!\n", o, "the image built after the kill is whole")
	l.MustRun("destroy")
	labtest.AssertNoLeaks(t, "it-kill", l.Dir)
}

// Two labs run side by side without touching each other; a subnet that
// overlaps another lab's, or a second lab of the same name, is refused.
func TestIntegrationLabsSideBySide(t *testing.T) {
	labtest.Integration(t)
	a := labtest.New(t, "it-a", map[string]string{"lab.yaml": "name: it-a\nnetworks: [{name: lan, subnet: 10.97.6.0/24}]\nnodes: [{role: n, count: 2}]\n"})
	b := labtest.New(t, "it-b", map[string]string{"lab.yaml": "name: it-b\nnodes: [{role: n, count: 2}]\n"}) // subnet chosen
	a.MustRun("up")
	b.MustRun("up")
	sa, sb := a.Status(), b.Status()
	assert.Equal(t, "running", sa["n1"].State)
	assert.Equal(t, "running", sb["n1"].State)
	assert.NotEqual(t, sa["n1"].Addresses, sb["n1"].Addresses)
	// Names resolve within a lab only.
	_, c := a.Exec("n1", "getent", "hosts", "n2.it-a.lab")
	assert.Equal(t, 0, c)
	_, c = a.Exec("n1", "getent", "hosts", "n2.it-b.lab")
	assert.NotEqual(t, 0, c)

	clash := labtest.New(t, "it-c", map[string]string{"lab.yaml": "name: it-c\nnetworks: [{name: lan, subnet: 10.97.6.128/25}]\nnodes: [{role: n}]\n"})
	_, stderr, code := clash.Run("up")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "subnet 10.97.6.128/25 overlaps the host's route to 10.97.6.0/24 on lab-it-a-0")
	clash.MustRun("destroy")

	twin := labtest.New(t, "it-a", map[string]string{"lab.yaml": "name: it-a\nnetworks: [{name: lan, subnet: 10.97.7.0/24}]\nnodes: [{role: n}]\n"})
	_, stderr, code = twin.Run("up")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "belongs to another lab")
	twin.MustRun("destroy")
	// The first lab is untouched by all this.
	assert.Equal(t, "running", a.Status()["n2"].State)
	_, c = a.Exec("n2", "ping", "-c1", "-W2", "n1")
	assert.Equal(t, 0, c)

	a.MustRun("destroy")
	b.MustRun("destroy")
	labtest.AssertNoLeaks(t, "it-a", a.Dir)
	labtest.AssertNoLeaks(t, "it-b", b.Dir)
}

// A second up on a busy lab fails at once naming the holder, or waits.
func TestIntegrationLock(t *testing.T) {
	labtest.Integration(t)
	l := labtest.New(t, "it-lock", map[string]string{"lab.yaml": `
name: it-lock
networks: [{name: lan, subnet: 10.97.8.0/24}]
nodes: [{role: n, provision: [{inline: sleep 3}]}]
`})
	first := exec.Command(l.Bin, "up")
	first.Dir, first.Env = l.Dir, append(os.Environ(), "CI=true")
	pipe, err := first.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, first.Start())
	// Wait until the first up is busy provisioning (it holds the lock), not
	// for a guessed time.
	sc := bufio.NewScanner(pipe)
	for sc.Scan() && !strings.Contains(sc.Text(), "provision") {
	}
	go func() { _, _ = io.Copy(io.Discard, pipe) }()
	_, stderr, code := l.Run("up")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, fmt.Sprintf("process %d holds", first.Process.Pid))
	_, stderr, code = l.Run("up", "--wait-lock", "60s")
	assert.Equal(t, 0, code, stderr)
	require.NoError(t, first.Wait())
}
