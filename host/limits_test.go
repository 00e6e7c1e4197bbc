package host

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func fakeSys(t *testing.T, values map[string]string) Sysctl {
	s := Sysctl{Root: t.TempDir()}
	for k, v := range values {
		p := s.path(k)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(v+"\n"), 0o644))
	}
	return s
}

// A machine's defaults carry a few containers; 30 need more inotify
// instances and keys, and lab raises exactly those, never lowers one.
func TestCheckAndRaise(t *testing.T) {
	s := fakeSys(t, map[string]string{
		"fs.inotify.max_user_instances": "128",
		"fs.inotify.max_user_watches":   "192530",
		"kernel.keys.maxkeys":           "200",
		"kernel.keys.maxbytes":          "20000",
		"kernel.pid_max":                "4194304",
	})
	low, err := s.Check(0)
	require.NoError(t, err)
	assert.Empty(t, low, "no container needs nothing more")

	low, err = s.Check(30)
	require.NoError(t, err)
	var keys []string
	for _, l := range low {
		keys = append(keys, l.Key)
		assert.Greater(t, l.Need, l.Have)
	}
	assert.Equal(t, []string{"fs.inotify.max_user_instances", "kernel.keys.maxkeys", "kernel.keys.maxbytes"}, keys)
	require.NoError(t, s.Raise(low))
	v, err := s.Get("fs.inotify.max_user_instances")
	require.NoError(t, err)
	assert.Equal(t, int64(128+16*30), v)
	low, err = s.Check(30)
	require.NoError(t, err)
	assert.Empty(t, low)
	low, err = s.Check(10)
	require.NoError(t, err)
	assert.Empty(t, low, "fewer containers never lower a limit")

	f := PersistFile(s.Needs(100), 100)
	assert.Contains(t, f, "kernel.pid_max = 4194304\n", "what the machine has when it is more")
	assert.Contains(t, f, "fs.inotify.max_user_instances = 1728\n")
}

func TestMissingSettingIsNoLimit(t *testing.T) {
	s := fakeSys(t, map[string]string{"kernel.keys.maxkeys": "200"})
	low, err := s.Check(50)
	require.NoError(t, err)
	require.Len(t, low, 1)
	assert.Equal(t, "kernel.keys.maxkeys 200 → 1200", low[0].String())
}
