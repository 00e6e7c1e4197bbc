package image

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func ino(t *testing.T, path string) uint64 {
	var st syscall.Stat_t
	require.NoError(t, syscall.Lstat(path, &st))
	return st.Ino
}

// share links only files that are the same in every respect, and changes
// only the new tree.
func TestShare(t *testing.T) {
	dir := t.TempDir()
	old, nw := filepath.Join(dir, "old"), filepath.Join(dir, "new")
	when := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	write := func(root, rel, text string, mode os.FileMode, mtime time.Time) {
		p := filepath.Join(root, rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(text), mode))
		require.NoError(t, os.Chmod(p, mode))
		require.NoError(t, os.Chtimes(p, mtime, mtime))
	}
	for _, root := range []string{old, nw} {
		write(root, "usr/bin/same", "#!/bin/sh\necho same\n", 0o755, when)
		write(root, "etc/mode", "x", 0o644, when)
		write(root, "etc/time", "x", 0o644, when)
		write(root, "etc/text", "aaaa", 0o644, when)
	}
	write(nw, "etc/mode", "x", 0o600, when)
	write(nw, "etc/time", "x", 0o644, when.Add(time.Second))
	write(nw, "etc/text", "aaab", 0o644, when)
	write(nw, "etc/only-new", "n", 0o644, when)
	oldIno := ino(t, filepath.Join(old, "usr/bin/same"))

	_, err := share(nw, []string{old})
	require.NoError(t, err)
	assert.Equal(t, oldIno, ino(t, filepath.Join(nw, "usr/bin/same")), "the same file is linked")
	assert.Equal(t, oldIno, ino(t, filepath.Join(old, "usr/bin/same")), "the old image is not touched")
	for _, f := range []string{"etc/mode", "etc/time", "etc/text"} {
		assert.NotEqual(t, ino(t, filepath.Join(old, f)), ino(t, filepath.Join(nw, f)), f+" differs: not linked")
	}
	b, err := os.ReadFile(filepath.Join(nw, "etc/text"))
	require.NoError(t, err)
	assert.Equal(t, "aaab", string(b))
	left, _ := filepath.Glob(filepath.Join(nw, "*/*.lab-link"))
	assert.Empty(t, left)

	c := &Cache{Dir: dir}
	for key, root := range map[string]string{"bookworm-a": old, "bookworm-b": nw} {
		d := c.imageDir(key)
		require.NoError(t, os.MkdirAll(d, 0o755))
		require.NoError(t, os.Rename(root, filepath.Join(d, "rootfs")))
		require.NoError(t, os.WriteFile(filepath.Join(d, "image.json"), []byte(`{"key":"`+key+`","spec":{"suite":"bookworm"}}`), 0o644))
	}
	use, err := c.Usage()
	require.NoError(t, err)
	assert.Positive(t, use["bookworm-a"].Shared)
	assert.Equal(t, use["bookworm-a"].Shared, use["bookworm-b"].Shared)
	assert.Greater(t, use["bookworm-b"].Own, use["bookworm-a"].Own, "the new image has one file more of its own")
}
