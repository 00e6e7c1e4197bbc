package main

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/labctl/lab/host"
	"github.com/labctl/lab/labtest"
)

// 30 nodes on a machine with the kernel's default limits: lab up raises
// what is too low, says so once, and every node boots. (With the defaults
// left as they are, about 20 start and the rest stop or hang at boot.)
func TestIntegrationThirtyNodesRaiseLimits(t *testing.T) {
	labtest.Integration(t)
	defaults := map[string]int64{"fs.inotify.max_user_instances": 128, "kernel.keys.maxkeys": 200, "kernel.keys.maxbytes": 20000}
	for k, v := range defaults {
		was, err := host.Default.Get(k)
		require.NoError(t, err)
		t.Cleanup(func() { _ = host.Default.Set(k, was) }) // after the lab is gone
		require.NoError(t, host.Default.Set(k, v))
	}
	l := labtest.New(t, "it-scale", map[string]string{"lab.yaml": `
name: it-scale
networks: [{name: lan, subnet: 10.97.24.0/22}]
defaults: {memory: 128M}
nodes:
  - role: n
    count: 30
`})
	_, stderr, code := l.Run("up")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stderr, "raised kernel limits for 30 containers: fs.inotify.max_user_instances 128 → 608, kernel.keys.maxkeys 200 → 800")
	st := l.Status()
	require.Len(t, st, 30)
	for i := 1; i <= 30; i++ {
		n := fmt.Sprintf("n%d", i)
		assert.Equal(t, "running", st[n].State, n)
	}
	out, _ := l.Exec("n30", "systemctl", "is-system-running")
	assert.Contains(t, []string{"running\n", "degraded\n"}, out, "n30's systemd finished booting")
	l.MustRun("destroy")
}

// Images mask units a lab node does not need (image.BootMasked); a role
// that needs one unmasks it: it runs now and at every boot after.
func TestIntegrationBootMasked(t *testing.T) {
	labtest.Integration(t)
	l := labtest.New(t, "it-mask", map[string]string{"lab.yaml": `
name: it-mask
networks: [{name: lan, subnet: 10.97.30.0/24}]
nodes:
  - role: bare
  - role: tty
    unmask: [console-getty.service, dpkg-db-backup.timer]
`})
	l.MustRun("up")
	active := func(node, unit string) string {
		out, _ := l.Exec(node, "systemctl", "is-active", unit)
		return strings.TrimSpace(out)
	}
	for _, u := range []string{"console-getty.service", "dpkg-db-backup.timer", "apt-daily.timer", "systemd-update-utmp.service"} {
		assert.Equal(t, "inactive", active("bare1", u), "bare1: %s is masked", u)
	}
	assert.Equal(t, "active", active("tty1", "console-getty.service"))
	assert.Equal(t, "active", active("tty1", "dpkg-db-backup.timer"))
	assert.Equal(t, "inactive", active("tty1", "apt-daily.timer"), "only what the role lists is unmasked")
	l.MustRun("halt")
	l.MustRun("up")
	assert.Equal(t, "active", active("tty1", "console-getty.service"), "unmasked for good: it starts at boot")
	assert.Equal(t, "active", active("tty1", "dpkg-db-backup.timer"), "unmasked for good: it starts at boot")
	out, _ := l.Exec("bare1", "pgrep", "-c", "agetty")
	assert.Equal(t, "0", strings.TrimSpace(out), "no console getty on a bare node")
	l.MustRun("destroy")
}

// lab writes a node's files from the host (no process in the node) with
// every path resolved inside the node: a link the node made out of
// /etc/lab, absolute or climbing with .., leads into the node, never onto
// the host.
func TestIntegrationLabFilesStayInNode(t *testing.T) {
	labtest.Integration(t)
	l := labtest.New(t, "it-files", map[string]string{"lab.yaml": `
name: it-files
networks: [{name: lan, subnet: 10.97.31.0/24}]
nodes: [{role: n, count: 2}]
`})
	l.MustRun("up")
	outside := t.TempDir() // on the host, and made in the nodes too
	_, c := l.Exec("n1", "sh", "-c", "mkdir -p "+outside+" && rm -rf /etc/lab && ln -s "+outside+" /etc/lab")
	require.Equal(t, 0, c)
	_, c = l.Exec("n2", "sh", "-c", "mkdir -p "+outside+" && rm -rf /etc/lab && ln -s ../../../../../.."+outside+" /etc/lab && ln -sf /etc/shadow-of-host /etc/hostname")
	require.Equal(t, 0, c)
	l.Write("lab.yaml", strings.Replace(mustRead(t, l, "lab.yaml"), "count: 2", "count: 3", 1))
	l.MustRun("up") // every node's /etc/hosts and facts change
	left, _ := os.ReadDir(outside)
	assert.Empty(t, left, "a node's link led lab's writes onto the host")
	assert.NoFileExists(t, "/etc/shadow-of-host")
	for _, n := range []string{"n1", "n2"} {
		out, c := l.Exec(n, "cat", outside+"/facts.env")
		require.Equal(t, 0, c, "%s: the facts went where the node's link points, inside the node", n)
		assert.Contains(t, out, "LAB_NODE='"+n+"'")
		out, _ = l.Exec(n, "grep", "-c", "n3.it-files.lab", "/etc/hosts")
		assert.Equal(t, "1", strings.TrimSpace(out), "%s knows n3", n)
	}
	out, _ := l.Exec("n2", "cat", "/etc/hostname")
	assert.Equal(t, "n2\n", out, "the link was replaced, not followed")
	l.MustRun("destroy")
}
