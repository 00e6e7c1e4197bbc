package lxc

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/labctl/lab/providers"
)

// armBooted leaves the unit that writes the mark, enabled, and no mark of
// an earlier boot; twice is the same as once.
func TestArmBooted(t *testing.T) {
	p := New(t.TempDir())
	n := providers.Node{Name: "n1", ID: "lab_n1"}
	up := filepath.Join(p.dir(n), "delta0")
	require.NoError(t, os.MkdirAll(filepath.Join(up, "var/lib/lab"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(up, BootedFile), nil, 0o644))
	for i := 0; i < 2; i++ {
		require.NoError(t, p.armBooted(context.Background(), n))
	}
	assert.NoFileExists(t, filepath.Join(up, BootedFile), "the mark of the last boot is gone")
	unit, err := os.ReadFile(filepath.Join(up, "etc/systemd/system/lab-booted.service"))
	require.NoError(t, err)
	assert.Contains(t, string(unit), "After=default.target")
	assert.Contains(t, string(unit), "/var/lib/lab/booted")
	dst, err := os.Readlink(filepath.Join(up, "etc/systemd/system/default.target.wants/lab-booted.service"))
	require.NoError(t, err)
	assert.Equal(t, "/etc/systemd/system/lab-booted.service", dst)
}

// waitBooted returns when the mark appears, and says systemd's answer when
// time runs out instead.
func TestWaitBooted(t *testing.T) {
	p := New(t.TempDir())
	p.BootPoll = time.Millisecond
	n := providers.Node{Name: "n1", ID: "lab_n1"}
	require.NoError(t, p.armBooted(context.Background(), n))
	go func() {
		time.Sleep(20 * time.Millisecond)
		_ = os.MkdirAll(filepath.Join(p.dir(n), "delta0/var/lib/lab"), 0o755)
		_ = os.WriteFile(filepath.Join(p.dir(n), "delta0", BootedFile), nil, 0o644)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, p.waitBooted(ctx, n))

	require.NoError(t, p.armBooted(context.Background(), n))
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel2()
	err := p.waitBooted(ctx2, n)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "node n1: boot: context deadline exceeded (systemd: ")
}

// A node that did not start is reported with the one line that says why.
func TestWhyLine(t *testing.T) {
	log := `lxc 20261202101010.123 WARN     cgfsng - cgroups/cgfsng.c:fchowmodat:1611 - No such file or directory - Failed to fchownat(40, memory.oom.group, 65536, 0, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW )
lxc bscale_n31 20261202101010.456 ERROR    conf - conf.c:lxc_setup_keyring:2891 - Disk quota exceeded - Failed to create kernel keyring
lxc bscale_n31 20261202101010.457 ERROR    start - start.c:do_start:1268 - Failed to setup container "bscale_n31"
lxc bscale_n31 20261202101010.458 ERROR    sync - sync.c:sync_wait:34 - An unexpected sequence number was received`
	assert.Equal(t, "ERROR    conf - conf.c:lxc_setup_keyring:2891 - Disk quota exceeded - Failed to create kernel keyring", WhyLine(log))
	assert.Equal(t, "lxc 1 WARN last", WhyLine("lxc 0 WARN first\nlxc 1 WARN last\n"))
}
