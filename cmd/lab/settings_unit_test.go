package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A user that is not root keeps images and containers in its XDG folders;
// a relative XDG variable is ignored, as the XDG spec says.
func TestUserDirs(t *testing.T) {
	env := map[string]string{}
	get := func(k string) string { return env[k] }
	assert.Equal(t, map[string]string{"cache_dir": "/home/a/.cache/lab", "lxc_path": "/home/a/.local/share/lab/lxc"}, userDirs(get, "/home/a"))
	env["XDG_CACHE_HOME"], env["XDG_DATA_HOME"] = "/x/cache", "rel/data"
	assert.Equal(t, map[string]string{"cache_dir": "/x/cache/lab", "lxc_path": "/home/a/.local/share/lab/lxc"}, userDirs(get, "/home/a"))
}

// The lab file's lxd: section is kept beside the state, so that a command
// that works from the state alone (destroy with a broken lab file) reaches
// the same cluster; LAB_LXD_REMOTE still wins; an emptied section is
// forgotten.
func TestLXDPlaceKept(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "lab.yaml")
	require.NoError(t, os.WriteFile(file, []byte("name: k\ndefaults: {provider: lxd}\nlxd: {remote: far, project: lab}\nnodes:\n  - role: web\n"), 0o644))
	a := &app{set: settings{File: file}}
	_, err := a.loadTopology()
	require.NoError(t, err)
	a.keepLXDPlace()

	require.NoError(t, os.WriteFile(file, []byte("name: k\nnodes: [broken\n"), 0o644))
	b := &app{set: settings{File: file}}
	_, err = b.loadTopology()
	require.Error(t, err)
	remote, project := b.lxdPlace()
	assert.Equal(t, []string{"far", "lab"}, []string{remote, project})
	b.set.LXDRemote = "other"
	remote, _ = b.lxdPlace()
	assert.Equal(t, "other", remote)

	require.NoError(t, os.WriteFile(file, []byte("name: k\nnodes:\n  - role: web\n"), 0o644))
	c := &app{set: settings{File: file}}
	_, err = c.loadTopology()
	require.NoError(t, err)
	c.keepLXDPlace()
	assert.NoFileExists(t, c.lxdPlaceFile())
}
