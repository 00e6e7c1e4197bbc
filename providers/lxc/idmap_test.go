package lxc

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSubordinateRange(t *testing.T) {
	for _, tc := range []struct {
		name, file, after string
		want              uint32
	}{
		{"no file", "", "root:100000:65536\n", 100000},
		{"root has one", "alice:100000:65536\nroot:231072:65536\n", "alice:100000:65536\nroot:231072:65536\n", 231072},
		{"above the others", "alice:100000:65536\nbob:165536:65536", "alice:100000:65536\nbob:165536:65536\nroot:231072:65536\n", 231072},
		{"root's too small", "root:300000:1000\n", "root:300000:1000\nroot:301000:65536\n", 301000},
		{"comments", "# root:5:65536\n", "# root:5:65536\nroot:100000:65536\n", 100000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "subuid")
			if tc.file != "" {
				require.NoError(t, os.WriteFile(path, []byte(tc.file), 0o644))
			}
			got, err := subordinate(path)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, tc.after, string(b))
			again, err := subordinate(path)
			require.NoError(t, err)
			assert.Equal(t, got, again, "the range, once added, is kept")
		})
	}
}
