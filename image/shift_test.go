package image

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func owner(t *testing.T, path string) (uint32, uint32, uint32) {
	t.Helper()
	var st syscall.Stat_t
	require.NoError(t, syscall.Lstat(path, &st))
	return st.Uid, st.Gid, st.Mode & 0o7777
}

// An image shifted for unprivileged nodes: every owner moved up by the
// range's start, setuid bits and file capabilities as they were, the image
// itself unchanged; made once.
func TestShifted(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("changing owners needs root")
	}
	rootfs := filepath.Join(t.TempDir(), "images", "k", "rootfs")
	write(t, filepath.Join(rootfs, "etc/passwd"), "root:x:0:0::/root:/bin/sh\n")
	write(t, filepath.Join(rootfs, "usr/bin/su"), "su")
	require.NoError(t, os.Chmod(filepath.Join(rootfs, "usr/bin/su"), 0o755|os.ModeSetuid))
	write(t, filepath.Join(rootfs, "usr/bin/ping"), "ping")
	capNetRaw := []byte{0, 0, 0, 2, 0, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0} // v2: cap_net_raw=ep
	require.NoError(t, unix.Lsetxattr(filepath.Join(rootfs, "usr/bin/ping"), "security.capability", capNetRaw, 0))
	write(t, filepath.Join(rootfs, "var/lib/postgresql/data"), "pg")
	require.NoError(t, os.Lchown(filepath.Join(rootfs, "var/lib/postgresql/data"), 105, 110))
	require.NoError(t, os.Symlink("usr/bin", filepath.Join(rootfs, "bin")))

	out, err := Shifted(context.Background(), rootfs, 100000, 200000)
	require.NoError(t, err)
	assert.Equal(t, ShiftedPath(rootfs, 100000, 200000), out)
	u, g, _ := owner(t, out)
	assert.Equal(t, []uint32{100000, 200000}, []uint32{u, g})
	u, g, _ = owner(t, filepath.Join(out, "var/lib/postgresql/data"))
	assert.Equal(t, []uint32{100105, 200110}, []uint32{u, g})
	u, _, _ = owner(t, filepath.Join(out, "bin"))
	assert.Equal(t, uint32(100000), u, "links are shifted too")
	_, _, mode := owner(t, filepath.Join(out, "usr/bin/su"))
	assert.Equal(t, uint32(0o4755), mode, "setuid survives the change of owner")
	buf := make([]byte, 64)
	n, err := unix.Lgetxattr(filepath.Join(out, "usr/bin/ping"), "security.capability", buf)
	require.NoError(t, err, "file capabilities survive the change of owner")
	assert.Equal(t, capNetRaw, buf[:n])

	u, _, mode = owner(t, filepath.Join(rootfs, "usr/bin/su"))
	assert.Equal(t, []uint32{0, 0o4755}, []uint32{u, mode}, "the image is unchanged")

	require.NoError(t, os.WriteFile(filepath.Join(out, "marker"), nil, 0o644))
	again, err := Shifted(context.Background(), rootfs, 100000, 200000)
	require.NoError(t, err)
	assert.FileExists(t, filepath.Join(again, "marker"), "made once, then reused")
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(rootfs), "*.tmp-*"))
	assert.Empty(t, left)
}
