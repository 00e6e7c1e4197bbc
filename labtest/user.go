package labtest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/labctl/lab/host"
	"github.com/labctl/lab/internal/spawn"
)

// User is a new user made for a test (lab without root), removed with it:
// its home, its cgroups, and the network helper when the test installed it.
type User struct {
	T    testing.TB
	Name string
	Home string
	Env  []string // NAME=value for each lab it runs
}

// With is the same user running lab with env (NAME=value) too.
func (u *User) With(env ...string) *User {
	c := *u
	c.Env = append(slices.Clone(u.Env), env...)
	return &c
}

// NewUser makes a user named prefix and a number.
func NewUser(t testing.TB, prefix string) *User {
	t.Helper()
	Integration(t)
	name := fmt.Sprintf("%s%d", prefix, os.Getpid()%100000)
	out, err := exec.Command("useradd", "--create-home", "--shell", "/bin/sh", name).CombinedOutput()
	require.NoError(t, err, "useradd: %s", out)
	home := filepath.Join("/home", name)
	// As Debian 12's adduser makes homes: others (the user's nodes' root
	// among them) cannot enter.
	require.NoError(t, os.Chmod(home, 0o700))
	if _, err := os.Stat(host.HelperPath); err != nil {
		t.Cleanup(func() { // installed by this test: not left
			_ = os.Remove(host.HelperPath)
			_ = os.Remove(filepath.Dir(host.HelperPath))
		})
	}
	t.Cleanup(func() {
		stopSessionDaemons(t, home) // if a failed test left them
		if u, err := host.LookupUser(name); err == nil {
			_ = u.Remove(io.Discard) // its cgroups, as lab host setup --remove does
		}
		if out, err := exec.Command("userdel", "--remove", name).CombinedOutput(); err != nil {
			t.Errorf("userdel %s: %v: %s", name, err, out)
		}
	})
	return &User{T: t, Name: name, Home: home}
}

// StopSessionDaemons ends the user's libvirtd and virtlogd (see
// stopSessionDaemons).
func (u *User) StopSessionDaemons() { stopSessionDaemons(u.T, u.Home) }

// stopSessionDaemons ends the libvirtd and virtlogd that the user's lab
// started for its VM nodes (qemu:///session; they would end two idle
// minutes later), by the PIDs in their files, so the user can go.
func stopSessionDaemons(t testing.TB, home string) {
	for _, d := range []string{"libvirtd", "virtlogd"} {
		b, err := os.ReadFile(filepath.Join(home, ".cache", "libvirt", d+".pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 1 {
			continue
		}
		if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(comm)) != d {
			continue // gone already; the PID may be another's now
		}
		_ = syscall.Kill(pid, syscall.SIGTERM)
		for i := 0; i < 100 && spawn.Alive(pid); i++ {
			time.Sleep(50 * time.Millisecond)
		}
		if spawn.Alive(pid) {
			t.Errorf("%s (pid %d) of the test's user did not end", d, pid)
		}
	}
}

// Cgroups are the user's cgroups that lab host setup made.
func Cgroups(user string) []string {
	found, _ := filepath.Glob("/sys/fs/cgroup/*/lab-" + user)
	return found
}

// Setup runs lab host setup --user for the user: its output.
func (u *User) Setup() string {
	u.T.Helper()
	b, err := exec.Command(Binary(u.T), "host", "setup", "--user", u.Name).CombinedOutput()
	require.NoError(u.T, err, "%s", b)
	return string(b)
}

// Lab runs lab as the user in dir, with a clean environment (and the
// user's Env): its output (both streams) and exit code.
func (u *User) Lab(dir string, args ...string) (string, int) {
	argv := append([]string{"-u", u.Name, "--", "env", "-i", "HOME=" + u.Home, "USER=" + u.Name,
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, u.Env...)
	argv = append(append(argv, Binary(u.T)), args...)
	cmd := exec.Command("runuser", argv...)
	cmd.Dir = dir
	b, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return string(b), ee.ExitCode()
	case err != nil:
		return string(b) + err.Error(), -1
	}
	return string(b), 0
}

// Write puts files (path: text) in the user's folder dir, as the user's.
func (u *User) Write(dir string, files map[string]string) {
	u.T.Helper()
	for f, text := range files {
		require.NoError(u.T, os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755))
		require.NoError(u.T, os.WriteFile(filepath.Join(dir, f), []byte(text), 0o644))
	}
	b, err := exec.Command("chown", "-R", u.Name+":", dir).CombinedOutput()
	require.NoError(u.T, err, "%s", b)
}
