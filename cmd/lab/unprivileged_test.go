package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/labctl/lab/labtest"
)

const userLab = `
name: it-user
networks: [{name: lan, subnet: 10.97.32.0/24}]
defaults: {memory: 256M}
nodes:
  - role: u
    privileged: false
    provision: [{inline: "echo made > /root/by-step"}]
  - role: p
    privileged: true
  - role: n
    privileged: false
    nesting: true
`

// Container nodes with privileged: false run in a user namespace: root in
// them is an unprivileged id on the host, which can neither reach
// the host's devices nor its kernel settings, and owns what it makes there
// as that id. Lab's own files in the node are the node root's. A node with
// nesting: true may run containers of its own.
func TestIntegrationUnprivileged(t *testing.T) {
	labtest.Integration(t)
	l := labtest.New(t, "it-user", map[string]string{"lab.yaml": userLab})
	_, stderr, code := l.Run("validate")
	require.Equal(t, 0, code)
	assert.Contains(t, stderr, "warning: lab.yaml:10: nodes[1].privileged: true: root in these nodes is root on the host")
	l.MustRun("up")
	st := l.Status()
	assert.False(t, st["u1"].Privileged)
	assert.True(t, st["p1"].Privileged)
	assert.Contains(t, l.MustRun("status"), "lxc (privileged)")

	uidMap := func(n string) string {
		out, c := l.Exec(n, "cat", "/proc/self/uid_map")
		require.Equal(t, 0, c)
		return strings.Join(strings.Fields(out), " ")
	}
	u := uidMap("u1")
	assert.NotEqual(t, "0 0 4294967295", u, "an unprivileged node has its own ids")
	assert.Regexp(t, `^0 [1-9][0-9]* 65536$`, u)
	assert.Equal(t, "0 0 4294967295", uidMap("p1"))
	hostRoot := strings.Fields(u)[1]

	// The host's kernel settings and disks are out of reach. Root in the
	// node may make its /proc/sys writable (LXC made it read-only inside the
	// node's own namespace): the hostname it writes is the node's own, and a
	// setting of the host's kernel still refuses it.
	host, _ := os.Hostname()
	watches, err := os.ReadFile("/proc/sys/fs/inotify/max_user_watches")
	require.NoError(t, err)
	l.Exec("u1", "sh", "-c", "mount -o remount,rw /proc/sys; echo lab-was-here > /proc/sys/kernel/hostname")
	_, c := l.Exec("u1", "sh", "-c", "echo 12345 > /proc/sys/fs/inotify/max_user_watches")
	assert.NotEqual(t, 0, c, "an unprivileged root changed a setting of the host's kernel")
	after, _ := os.Hostname()
	assert.Equal(t, host, after)
	now, _ := os.ReadFile("/proc/sys/fs/inotify/max_user_watches")
	assert.Equal(t, string(watches), string(now))
	var root syscall.Stat_t
	require.NoError(t, syscall.Stat("/", &root))
	disk := func(n string) int {
		dev := fmt.Sprintf("b %d %d", unix.Major(root.Dev), unix.Minor(root.Dev))
		_, c := l.Exec(n, "sh", "-c", "mknod /tmp/host-disk "+dev)
		return c
	}
	assert.NotEqual(t, 0, disk("u1"), "an unprivileged root made a block device of the host's disk")
	assert.Equal(t, 0, disk("p1"), "a privileged root can (which is why it is not the default)")

	// What root makes in the node is the mapped id's on the host.
	_, c = l.Exec("u1", "touch", "/root/made-here")
	require.Equal(t, 0, c)
	var made syscall.Stat_t
	require.NoError(t, syscall.Stat(filepath.Join("/var/lib/lxc", st["u1"].ID, "delta0/root/made-here"), &made))
	assert.Equal(t, hostRoot, strconv.Itoa(int(made.Uid)))
	out, _ := l.Exec("u1", "stat", "-c", "%u:%g %n", "/root/by-step", "/etc/hosts", "/etc/lab/facts.env", "/etc/systemd/system")
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		assert.True(t, strings.HasPrefix(line, "0:0 "), "owned by the node's root: %s", line)
	}
	out, _ = l.Exec("u1", "systemctl", "is-system-running")
	assert.Equal(t, "running", strings.TrimSpace(out))

	// Nesting: a container in the node can mount its own /proc.
	nested := func(n string) int {
		_, c := l.Exec(n, "unshare", "--user", "--map-root-user", "--mount", "--pid", "--fork", "--mount-proc", "true")
		return c
	}
	assert.Equal(t, 0, nested("n1"))
	assert.NotEqual(t, 0, nested("u1"), "without nesting: true a node's containers cannot mount /proc")

	// Making a node privileged replaces it.
	l.Write("lab.yaml", strings.Replace(userLab, "  - role: u\n    privileged: false\n", "  - role: u\n    privileged: true\n", 1))
	assert.Contains(t, l.MustRun("plan"), "unprivileged → privileged")
	l.MustRun("up")
	assert.Equal(t, "0 0 4294967295", uidMap("u1"))
	l.MustRun("destroy")
}
