package image

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/labctl/lab/labtest"
)

func write(t *testing.T, path, text string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	require.NoError(t, syscall.Lstat(path, &st))
	return st.Ino
}

func gone(t *testing.T, path string) {
	t.Helper()
	_, err := os.Lstat(path)
	assert.True(t, os.IsNotExist(err), "%s should be gone", path)
}

// An upper folder as overlayfs leaves it, applied over a linked copy of its
// lower folder: the copy becomes the merged tree, the lower stays as it was.
func TestApplyUpper(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("whiteouts and trusted.* attributes need root")
	}
	dir := t.TempDir()
	base, root, upper := filepath.Join(dir, "base"), filepath.Join(dir, "root"), filepath.Join(dir, "upper")
	write(t, filepath.Join(base, "a"), "A")
	write(t, filepath.Join(base, "etc/keep"), "K")
	write(t, filepath.Join(base, "etc/gone"), "G")
	write(t, filepath.Join(base, "d/x"), "X")
	write(t, filepath.Join(base, "o/old"), "O")
	write(t, filepath.Join(base, "dd/inside"), "I")
	require.NoError(t, os.Symlink("a", filepath.Join(base, "l")))
	out, err := exec.Command("cp", "-a", "-l", base, root).CombinedOutput()
	require.NoError(t, err, string(out))

	write(t, filepath.Join(upper, "n"), "N")                       // new
	write(t, filepath.Join(upper, "etc/keep"), "K2")               // changed (copied up)
	write(t, filepath.Join(upper, "d/y"), "Y")                     // new in a merged folder
	write(t, filepath.Join(upper, "o/new"), "NEW")                 // in an opaque folder
	write(t, filepath.Join(upper, "dd"), "now a file")             // a file where a folder was
	require.NoError(t, os.Symlink("n", filepath.Join(upper, "l"))) // a link changed
	require.NoError(t, unix.Mknod(filepath.Join(upper, "etc/gone"), unix.S_IFCHR, 0))
	require.NoError(t, unix.Lsetxattr(filepath.Join(upper, "o"), "trusted.overlay.opaque", []byte("y"), 0))
	require.NoError(t, unix.Lsetxattr(filepath.Join(upper, "etc/keep"), "trusted.overlay.origin", []byte{0, 1}, 0))
	require.NoError(t, unix.Lsetxattr(filepath.Join(upper, "etc/keep"), "user.kept", []byte("1"), 0))
	require.NoError(t, os.Chmod(filepath.Join(upper, "d"), 0o750))

	require.NoError(t, applyUpper(upper, root))

	assert.Equal(t, "A", read(t, filepath.Join(root, "a")))
	assert.Equal(t, inode(t, filepath.Join(base, "a")), inode(t, filepath.Join(root, "a")), "an unchanged file stays a link")
	assert.Equal(t, "N", read(t, filepath.Join(root, "n")))
	assert.Equal(t, "K2", read(t, filepath.Join(root, "etc/keep")))
	assert.Equal(t, "X", read(t, filepath.Join(root, "d/x")))
	assert.Equal(t, "Y", read(t, filepath.Join(root, "d/y")))
	assert.Equal(t, "NEW", read(t, filepath.Join(root, "o/new")))
	gone(t, filepath.Join(root, "o/old"))
	gone(t, filepath.Join(root, "etc/gone"))
	assert.Equal(t, "now a file", read(t, filepath.Join(root, "dd")))
	link, err := os.Readlink(filepath.Join(root, "l"))
	require.NoError(t, err)
	assert.Equal(t, "n", link)
	fi, err := os.Stat(filepath.Join(root, "d"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o750), fi.Mode().Perm())
	_, err = unix.Lgetxattr(filepath.Join(root, "etc/keep"), "trusted.overlay.origin", make([]byte, 8))
	assert.ErrorIs(t, err, unix.ENODATA, "overlayfs' own attributes are dropped")
	_, err = unix.Lgetxattr(filepath.Join(root, "etc/keep"), "user.kept", make([]byte, 8))
	assert.NoError(t, err, "other attributes stay")

	// The lower folder is as it was.
	assert.Equal(t, "K", read(t, filepath.Join(base, "etc/keep")))
	assert.Equal(t, "G", read(t, filepath.Join(base, "etc/gone")))
	assert.Equal(t, "O", read(t, filepath.Join(base, "o/old")))
	assert.Equal(t, "I", read(t, filepath.Join(base, "dd/inside")))
	link, err = os.Readlink(filepath.Join(base, "l"))
	require.NoError(t, err)
	assert.Equal(t, "a", link)
}

func TestLayerBase(t *testing.T) {
	spec := Spec{Suite: "bookworm", Packages: []string{"serf", "iproute2", "systemd-sysv"}, Base: []string{"systemd-sysv", "iproute2", "iproute2"}}.Normalize()
	assert.Equal(t, []string{"iproute2", "systemd-sysv"}, spec.Base)
	assert.Equal(t, Spec{Suite: "bookworm", Packages: []string{"iproute2", "serf", "systemd-sysv"}}.Key(), spec.Key(), "the base does not change the key")
	if _, err := exec.LookPath("mmdebstrap"); err == nil {
		base, ok := layerBase(spec)
		require.True(t, ok)
		assert.Equal(t, Spec{Suite: "bookworm", Packages: []string{"iproute2", "systemd-sysv"}}.Normalize(), base)
	}
	_, ok := layerBase(Spec{Suite: "bookworm", Packages: []string{"iproute2"}, Base: []string{"iproute2"}}.Normalize())
	assert.False(t, ok, "an image that is its base is bootstrapped")
	assert.Nil(t, Spec{Packages: []string{"a"}, Base: []string{"b"}}.Normalize().Base, "a base holds only packages the image has")
}

// A real layer: the LXC provider's base (as lab's nodes have it, so the
// cache usually has it already) and one package more.
func TestIntegrationLayerOverBase(t *testing.T) {
	labtest.Integration(t)
	c := &Cache{Dir: "/var/cache/lab"}
	lxcBase := []string{"systemd-sysv", "iproute2", "iputils-ping", "procps", "netbase"}
	spec := Spec{Suite: "bookworm", Packages: append([]string{"hello"}, lxcBase...), Base: lxcBase}.Normalize()
	_ = c.Remove(spec.Key())
	var lines []string
	img, err := c.Ensure(context.Background(), spec, func(l string) { lines = append(lines, l) })
	require.NoError(t, err, strings.Join(lines, "\n"))
	t.Cleanup(func() { _ = c.Remove(spec.Key()) })
	base, err := c.Get(Spec{Suite: "bookworm", Packages: lxcBase}.Key())
	require.NoError(t, err, "the base is an image of its own")
	assert.Equal(t, "mmdebstrap+apt", img.Builder, strings.Join(lines, "\n"))
	t.Logf("built in %.1fs:\n%s", img.BuildTime.Seconds(), strings.Join(lines, "\n"))

	assert.FileExists(t, filepath.Join(img.RootFS, "usr/bin/hello"))
	assert.Contains(t, read(t, filepath.Join(img.RootFS, "var/lib/dpkg/status")), "Package: hello\n")
	assert.NotContains(t, read(t, filepath.Join(base.RootFS, "var/lib/dpkg/status")), "Package: hello\n", "the base changed")
	gone(t, filepath.Join(base.RootFS, "usr/bin/hello"))
	assert.Equal(t, inode(t, filepath.Join(base.RootFS, "usr/bin/ip")), inode(t, filepath.Join(img.RootFS, "usr/bin/ip")),
		"the base's files are shared, not copied")
	for _, p := range []string{"usr/sbin/policy-rc.d", "etc/resolv.conf", "etc/hostname"} {
		gone(t, filepath.Join(img.RootFS, p))
	}
	lists, _ := filepath.Glob(filepath.Join(img.RootFS, "var/lib/apt/lists/*Packages*"))
	assert.Empty(t, lists, "images carry no package lists")
	debs, _ := filepath.Glob(filepath.Join(c.debDir(), "hello_*.deb"))
	assert.NotEmpty(t, debs, "the downloaded .deb is cached")
	link, err := os.Readlink(filepath.Join(img.RootFS, "etc/systemd/system/getty@tty1.service"))
	require.NoError(t, err)
	assert.Equal(t, "/dev/null", link, "a layer is finished as every image is")
	leftovers, _ := filepath.Glob(filepath.Join(c.Dir, "images", ".build-"+spec.Key()+"-*"))
	assert.Empty(t, leftovers)
}
