package host

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSubIDs(t *testing.T) {
	for _, tc := range []struct {
		name, file, after string
		owner             []string
		want              uint32
	}{
		{"no file", "", "root:100000:65536\n", []string{"root", "0"}, 100000},
		{"root has one", "alice:100000:65536\nroot:231072:65536\n", "alice:100000:65536\nroot:231072:65536\n", []string{"root", "0"}, 231072},
		{"root by uid", "0:300000:65536\n", "0:300000:65536\n", []string{"root", "0"}, 300000},
		{"above the others", "alice:100000:65536\nbob:165536:65536", "alice:100000:65536\nbob:165536:65536\nroot:231072:65536\n", []string{"root", "0"}, 231072},
		{"root's too small", "root:300000:1000\n", "root:300000:1000\nroot:301000:65536\n", []string{"root", "0"}, 301000},
		{"comments", "# root:5:65536\n", "# root:5:65536\nroot:100000:65536\n", []string{"root", "0"}, 100000},
		{"a user", "root:100000:65536\n", "root:100000:65536\nalice:165536:65536\n", []string{"alice", "1001"}, 165536},
		{"a user by uid", "root:100000:65536\n1001:165536:65536\n", "root:100000:65536\n1001:165536:65536\n", []string{"alice", "1001"}, 165536},
		{"not another's", "bob:100000:65536\n", "bob:100000:65536\nalice:165536:65536\n", []string{"alice", "1001"}, 165536},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "subuid")
			if tc.file != "" {
				require.NoError(t, os.WriteFile(path, []byte(tc.file), 0o644))
			}
			got, err := SubIDs(path, tc.owner...)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, tc.after, string(b))
			again, err := SubIDs(path, tc.owner...)
			require.NoError(t, err)
			assert.Equal(t, got, again, "the range, once added, is kept")
		})
	}
}
