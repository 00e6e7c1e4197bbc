package lxc

import (
	"os"
	"path/filepath"
	"testing"

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
