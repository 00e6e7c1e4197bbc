package provision

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A folder copied into nodes never takes the lab's state folder (and its
// private SSH key) along, and neither does its hash.
func TestCopyNeverTakesTheStateFolder(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, ".lab", "ssh"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".lab", "ssh", "id_ed25519"), []byte("secret"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "app.conf"), []byte("x"), 0o644))
	var buf bytes.Buffer
	require.NoError(t, tarDir(&buf, dir, filepath.Join(dir, ".lab")))
	var names []string
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		names = append(names, h.Name)
	}
	assert.Equal(t, []string{"app.conf"}, names)

	var h1, h2 bytes.Buffer
	require.NoError(t, hashTree(&h1, dir, filepath.Join(dir, ".lab")))
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".lab", "state.json"), []byte("{}"), 0o644))
	require.NoError(t, hashTree(&h2, dir, filepath.Join(dir, ".lab")))
	assert.Equal(t, h1.String(), h2.String(), "the state changing does not re-run the copy")
}
