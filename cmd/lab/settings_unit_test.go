package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
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
