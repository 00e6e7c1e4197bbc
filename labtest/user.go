package labtest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/labctl/lab/host"
)

// User is a new user made for a test (lab without root), removed with it:
// its home, its cgroups, and the network helper when the test installed it.
type User struct {
	T    testing.TB
	Name string
	Home string
}

// NewUser makes a user named prefix and a number.
func NewUser(t testing.TB, prefix string) *User {
	t.Helper()
	Integration(t)
	name := fmt.Sprintf("%s%d", prefix, os.Getpid()%100000)
	out, err := exec.Command("useradd", "--create-home", "--shell", "/bin/sh", name).CombinedOutput()
	require.NoError(t, err, "useradd: %s", out)
	if _, err := os.Stat(host.HelperPath); err != nil {
		t.Cleanup(func() { // installed by this test: not left
			_ = os.Remove(host.HelperPath)
			_ = os.Remove(filepath.Dir(host.HelperPath))
		})
	}
	t.Cleanup(func() {
		if u, err := host.LookupUser(name); err == nil {
			_ = u.Remove(io.Discard) // its cgroups, as lab host setup --remove does
		}
		if out, err := exec.Command("userdel", "--remove", name).CombinedOutput(); err != nil {
			t.Errorf("userdel %s: %v: %s", name, err, out)
		}
	})
	return &User{T: t, Name: name, Home: filepath.Join("/home", name)}
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

// Lab runs lab as the user in dir, with a clean environment: its output
// (both streams) and exit code.
func (u *User) Lab(dir string, args ...string) (string, int) {
	argv := append([]string{"-u", u.Name, "--", "env", "-i", "HOME=" + u.Home, "USER=" + u.Name,
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin", Binary(u.T)}, args...)
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
