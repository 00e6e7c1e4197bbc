package lxc

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A destroyed container's cgroups go from every hierarchy, numbered ones
// included; another container's stay, even one whose name starts alike.
func TestRemoveCgroups(t *testing.T) {
	dir := t.TempDir()
	old := cgroupRoot
	cgroupRoot = dir
	t.Cleanup(func() { cgroupRoot = old })
	gone := []string{"lxc.payload.lab_n1", "memory/lxc.payload.lab_n1/init.scope", "memory/lxc.monitor.lab_n1",
		"memory/lxc.monitor.lab_n1-1", "memory/lxc.monitor.lab_n1-2", "cpu/lxc.payload.lab_n1"}
	stay := []string{"memory/lxc.payload.lab_n10", "cpu/lxc.payload.lab_n2", "memory/lxc.monitor.lab_n1x"}
	for _, d := range append(gone, stay...) {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	RemoveCgroups("lab_n1")
	for _, d := range gone {
		assert.NoDirExists(t, filepath.Join(dir, d))
	}
	for _, d := range stay {
		assert.DirExists(t, filepath.Join(dir, d))
	}
}

// What a killed lab left in a destroyed container's payload cgroup (an
// attach helper, in lab's own PID namespace) is ended with it; lab itself
// is not, though its PID is listed too.
func TestRemoveCgroupsEndsStrays(t *testing.T) {
	dir := t.TempDir()
	old := cgroupRoot
	cgroupRoot = dir
	t.Cleanup(func() { cgroupRoot = old })
	stray := exec.Command("sleep", "300")
	require.NoError(t, stray.Start())
	t.Cleanup(func() { _ = stray.Process.Kill() })
	payload := filepath.Join(dir, "memory", "lxc.payload.lab_s1", "init.scope")
	require.NoError(t, os.MkdirAll(payload, 0o755))
	procs := fmt.Sprintf("%d\n%d\n", os.Getpid(), stray.Process.Pid)
	require.NoError(t, os.WriteFile(filepath.Join(payload, "cgroup.procs"), []byte(procs), 0o644))
	done := make(chan error, 1)
	go func() { done <- stray.Wait() }()
	RemoveCgroups("lab_s1")
	select {
	case err := <-done:
		require.Error(t, err)
		assert.Contains(t, err.Error(), "signal: killed")
	case <-time.After(10 * time.Second):
		t.Fatal("the stray still runs")
	}
}

// A stopped container's monitor still in its cgroup is waited for, so
// its cgroup goes too; it is never killed.
func TestRemoveCgroupsAwaitsMonitor(t *testing.T) {
	dir := t.TempDir()
	old := cgroupRoot
	cgroupRoot = dir
	t.Cleanup(func() { cgroupRoot = old })
	monitor := filepath.Join(dir, "memory", "lxc.monitor.lab_m1")
	require.NoError(t, os.MkdirAll(monitor, 0o755))
	procs := filepath.Join(monitor, "cgroup.procs")
	mon := exec.Command("sleep", "0.5")
	require.NoError(t, mon.Start())
	require.NoError(t, os.WriteFile(procs, []byte(fmt.Sprintf("%d\n", mon.Process.Pid)), 0o644))
	exited := make(chan error, 1)
	go func() {
		err := mon.Wait()
		_ = os.Remove(procs) // as the kernel empties it, and lets rmdir through
		exited <- err
	}()
	RemoveCgroups("lab_m1")
	select {
	case err := <-exited:
		assert.NoError(t, err, "the monitor ended on its own")
	default:
		t.Fatal("RemoveCgroups returned while the monitor still ran")
	}
	assert.NoDirExists(t, monitor)
}
