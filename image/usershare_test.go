package image

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Only a file root owns, in folders only root can write, is trusted as a
// shared image: what a member of the lab group could have made or swapped
// is refused.
func TestOpenTrustedRefusesWhatOthersCouldWrite(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to own files as others")
	}
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o755))
	file := func(rel string, mode os.FileMode, uid int) string {
		p := filepath.Join(dir, rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte("x"), mode))
		require.NoError(t, os.Chmod(p, mode))
		require.NoError(t, os.Chown(p, uid, 0))
		return p
	}
	good := file("good/f", 0o640, 0)
	f, err := openTrusted(good)
	require.NoError(t, err)
	f.Close()

	refused := map[string]string{
		"a user's file":             file("users/f", 0o640, 65534),
		"a file others may write":   file("writable/f", 0o660, 0),
		"a symlink to a good file":  filepath.Join(dir, "link"),
		"a folder others may write": file("gw/f", 0o640, 0),
		"a user's folder":           file("userdir/f", 0o640, 0),
		"a relative path":           "good/f",
		"a folder, not a file":      filepath.Join(dir, "good"),
	}
	require.NoError(t, os.Symlink(good, refused["a symlink to a good file"]))
	require.NoError(t, os.Chmod(filepath.Join(dir, "gw"), 0o775))
	require.NoError(t, os.Chown(filepath.Join(dir, "userdir"), 65534, 0))
	for what, p := range refused {
		f, err := openTrusted(p)
		if assert.Error(t, err, what) {
			continue
		}
		f.Close()
	}
	_, err = openTrusted(filepath.Join(dir, "none/f"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// Root shares an image as a tar of its tree, group lab, mode 0640, without
// its /dev; once.
func TestShareWritesTheTreeForTheGroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := exec.LookPath("zstd"); err != nil {
		t.Skip("needs zstd")
	}
	c := &Cache{Dir: t.TempDir(), ShareGID: 4242}
	spec := Spec{Suite: "bookworm", Packages: []string{"serf"}}
	fakeBuilt(t, c, spec)
	img, err := c.Get(spec.Key())
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(img.RootFS, "etc/os-release"), []byte("lab\n"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(img.RootFS, "dev"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(img.RootFS, "dev/null"), nil, 0o644))
	require.NoError(t, os.Chown(filepath.Join(img.RootFS, "etc/os-release"), 100, 101))

	_, err = c.Ensure(context.Background(), spec, nil)
	require.NoError(t, err)
	path := filepath.Join(c.imageDir(spec.Key()), sharedFile)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm())
	assert.Equal(t, uint32(4242), fi.Sys().(*syscall.Stat_t).Gid)

	zstd := exec.Command("zstd", "-q", "-dc", path)
	out, err := zstd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, zstd.Start())
	owners := map[string][2]int{}
	tr := tar.NewReader(out)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		owners[h.Name] = [2]int{h.Uid, h.Gid}
	}
	require.NoError(t, zstd.Wait())
	assert.Equal(t, [2]int{100, 101}, owners["./etc/os-release"], "owners as numbers, as the tree has them")
	assert.Contains(t, owners, "./dev/")
	assert.NotContains(t, owners, "./dev/null", "a node's /dev is LXC's")

	before, _ := os.Stat(path)
	_, err = c.Ensure(context.Background(), spec, nil)
	require.NoError(t, err)
	after, _ := os.Stat(path)
	assert.Equal(t, before.ModTime(), after.ModTime(), "shared once")
}
