package image

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/labctl/lab/labtest"
)

func TestKeyIsContent(t *testing.T) {
	a := Spec{Suite: "bookworm", Packages: []string{"nginx-light", "serf", "serf"}}
	b := Spec{Suite: "bookworm", Mirror: DefaultMirror, Packages: []string{"serf", "nginx-light"}}
	assert.Equal(t, a.Key(), b.Key(), "order, duplicates and the default mirror must not change the key")
	assert.NotEqual(t, a.Key(), Spec{Suite: "trixie", Packages: a.Packages}.Key())
	assert.NotEqual(t, a.Key(), Spec{Suite: "bookworm", Mirror: "http://mirror.example/debian", Packages: a.Packages}.Key())
	assert.NotEqual(t, a.Key(), Spec{Suite: "bookworm", Packages: []string{"serf"}}.Key())
	assert.Regexp(t, `^bookworm-[0-9a-f]{12}$`, a.Key())
	assert.Equal(t, "bookworm", SuiteOf("debian/bookworm"))
}

// fakeBuilt puts an image into the cache as a build would.
func fakeBuilt(t *testing.T, c *Cache, spec Spec) {
	dir := c.imageDir(spec.Key())
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "rootfs", "etc"), 0o755))
	b, _ := json.Marshal(Image{Key: spec.Key(), Spec: spec.Normalize(), BuiltAt: time.Now()})
	require.NoError(t, os.WriteFile(filepath.Join(dir, "image.json"), b, 0o644))
}

func TestCachedImageIsNotRebuilt(t *testing.T) {
	c := &Cache{Dir: t.TempDir()}
	spec := Spec{Suite: "bookworm", Packages: []string{"serf"}}
	fakeBuilt(t, c, spec)
	img, err := c.Ensure(context.Background(), spec, nil)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(c.Dir, "images", spec.Key(), "rootfs"), img.RootFS)
	list, err := c.List()
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.NoError(t, c.Remove(spec.Key()))
	list, _ = c.List()
	assert.Empty(t, list)
	assert.Error(t, c.Remove(spec.Key()))
}

func TestBuildWaitsForAnotherBuilder(t *testing.T) {
	c := &Cache{Dir: t.TempDir()}
	spec := Spec{Suite: "bookworm", Packages: []string{"serf"}}
	unlock, err := c.lock(context.Background(), spec.Key())
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { _, err := c.Ensure(context.Background(), spec, nil); done <- err }()
	select {
	case <-done:
		t.Fatal("Ensure did not wait for the build lock")
	case <-time.After(300 * time.Millisecond):
	}
	// The other builder finishes: Ensure finds its image and builds nothing.
	fakeBuilt(t, c, spec)
	unlock()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Ensure did not notice the image")
	}

	// A waiting builder gives up when its context ends.
	unlock, err = c.lock(context.Background(), "other")
	require.NoError(t, err)
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = c.lock(ctx, "other")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestFinishStripsHostIdentity(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "etc/hostname"), []byte("buildhost\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(root, "etc/machine-id"), []byte("abc\n"), 0o444))
	require.NoError(t, finish(root))
	_, err := os.Stat(filepath.Join(root, "etc/hostname"))
	assert.True(t, os.IsNotExist(err))
	b, _ := os.ReadFile(filepath.Join(root, "etc/machine-id"))
	assert.Empty(t, b)
	link, err := os.Readlink(filepath.Join(root, "etc/systemd/system/systemd-networkd-wait-online.service"))
	require.NoError(t, err)
	assert.Equal(t, "/dev/null", link)
}

// RemoveTree unmounts what a bootstrap mounted before removing anything.
func TestRemoveTreeUnmountsFirst(t *testing.T) {
	labtest.Integration(t)
	dir := filepath.Join(t.TempDir(), ".build-x")
	dev := filepath.Join(dir, "rootfs", "dev")
	require.NoError(t, os.MkdirAll(dev, 0o755))
	// Stand-in for the host's /dev: a tmpfs with a file that must survive.
	host := t.TempDir()
	require.NoError(t, syscall.Mount("tmpfs", host, "tmpfs", 0, "size=1m"))
	t.Cleanup(func() { _ = syscall.Unmount(host, syscall.MNT_DETACH) })
	require.NoError(t, os.WriteFile(filepath.Join(host, "null"), []byte("precious"), 0o644))
	require.NoError(t, syscall.Mount(host, dev, "", syscall.MS_BIND, ""))
	require.NotEmpty(t, mountsBelow(dir))

	require.NoError(t, RemoveTree(dir))
	_, err := os.Stat(dir)
	assert.True(t, os.IsNotExist(err))
	b, err := os.ReadFile(filepath.Join(host, "null"))
	require.NoError(t, err, "RemoveTree deleted through a bind mount")
	assert.Equal(t, "precious", string(b))
}
