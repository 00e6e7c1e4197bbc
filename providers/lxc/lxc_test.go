package lxc

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/labctl/lab/providers"
)

func fakeCgroups(t *testing.T, unified string, v1 ...string) {
	dir := t.TempDir()
	old := cgroupRoot
	cgroupRoot = dir
	t.Cleanup(func() { cgroupRoot = old })
	if unified != "" {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "unified"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "unified", "cgroup.controllers"), []byte(unified), 0o644))
	}
	for _, c := range v1 {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, c), 0o755))
	}
}

func TestCgroupLimitsByHierarchy(t *testing.T) {
	fakeCgroups(t, "", "cpu", "memory") // hybrid with v1 controllers (our CI machine)
	assert.Equal(t, [][2]string{
		{"lxc.cgroup.cpu.cfs_period_us", "100000"}, {"lxc.cgroup.cpu.cfs_quota_us", "200000"},
		{"lxc.cgroup.memory.limit_in_bytes", "536870912"},
	}, cgroupLimits(2, 512<<20))

	fakeCgroups(t, "cpuset cpu io memory pids") // v2
	assert.Equal(t, [][2]string{{"lxc.cgroup2.cpu.max", "100000 100000"}, {"lxc.cgroup2.memory.max", "1073741824"}}, cgroupLimits(1, 1<<30))

	fakeCgroups(t, "") // neither: no limits rather than a container that will not start
	assert.Empty(t, cgroupLimits(1, 1<<30))
}

func TestConfig(t *testing.T) {
	p := New("/var/lib/lxc")
	n := providers.Node{Lab: "todomvc", Name: "pg2", ID: "todomvc_pg2", CPUs: 1, Memory: 256 << 20,
		Image:      providers.Image{RootFS: "/cache/images/k/rootfs"},
		Interfaces: []providers.Interface{{Bridge: "lab-todomvc-0", Addr: netip.MustParsePrefix("10.80.0.32/24")}}}
	cfg := p.Config(n)
	for _, want := range []string{
		"lxc.uts.name = pg2\n",
		"lxc.rootfs.path = overlay:/cache/images/k/rootfs:/var/lib/lxc/todomvc_pg2/delta0\n",
		"lxc.net.0.link = lab-todomvc-0\n",
		"lxc.net.0.ipv4.address = 10.80.0.32/24 10.80.0.255\n",
		"lxc.signal.halt = SIGRTMIN+3\n",
		"lxc.net.0.hwaddr = " + MAC("todomvc", "pg2", 0) + "\n",
	} {
		assert.Contains(t, cfg, want)
	}
	assert.NotContains(t, cfg, "gateway", "nodes must have no default route")
	assert.NotContains(t, cfg, "lxc.hook.pre-mount", "no IPv6, no DAD to turn off")
	n.Interfaces[0].Addr6 = netip.MustParsePrefix("fd00:1::32/64")
	assert.Contains(t, p.Config(n), "lxc.hook.pre-mount = "+dadOff+"\n")
	assert.NotContains(t, cfg, "lxc.idmap", "a privileged node has no user namespace")

	// Unprivileged: its ids mapped, its image shifted to them.
	p.IDs = IDMap{UID: 100000, GID: 200000, Count: 65536}
	n.Unprivileged = true
	cfg = p.Config(n)
	for _, want := range []string{
		"lxc.idmap = u 0 100000 65536\n",
		"lxc.idmap = g 0 200000 65536\n",
		"lxc.rootfs.options = userxattr\n",
		"lxc.rootfs.path = overlay:/cache/images/k/shifted-100000-200000/rootfs:/var/lib/lxc/todomvc_pg2/delta0\n",
	} {
		assert.Contains(t, cfg, want)
	}
	assert.NotContains(t, cfg, "nesting.conf")
	n.Nesting = true
	assert.Contains(t, p.Config(n), "lxc.include = /usr/share/lxc/config/nesting.conf\nlxc.mount.auto = cgroup:rw:force\n")
	assert.Equal(t, MAC("todomvc", "pg2", 0), MAC("todomvc", "pg2", 0))
	assert.NotEqual(t, MAC("todomvc", "pg2", 0), MAC("todomvc", "pg1", 0))
	assert.True(t, strings.HasPrefix(MAC("a", "b", 0), "0a:"), "locally administered, unicast")
	assert.Equal(t, "10.1.3.255", providers.Broadcast(netip.MustParsePrefix("10.1.2.9/23")))
}

// A container's config names its lab, node and owner: lab finds it without
// any state, and never adopts or removes one another lab made.
func TestOwnerRecorded(t *testing.T) {
	dir := t.TempDir()
	p := New(dir)
	n := providers.Node{Lab: "web", Name: "n1", ID: "web_n1", Owner: "/a/.lab", Image: providers.Image{RootFS: "/img"}}
	require.NoError(t, p.Create(context.Background(), n))
	found, err := p.List(context.Background())
	require.NoError(t, err)
	require.Len(t, found, 1)
	assert.Equal(t, providers.Found{Provider: "lxc", ID: "web_n1", Lab: "web", Node: "n1", Owner: "/a/.lab", State: providers.Stopped}, found[0])

	twin := n
	twin.Owner = "/b/.lab"
	var oe *providers.OwnerError
	require.ErrorAs(t, p.Create(context.Background(), twin), &oe, "a same-name lab in another folder")
	assert.Contains(t, oe.Error(), "belongs to the lab recorded in /a/.lab")
	require.ErrorAs(t, p.Destroy(context.Background(), twin), &oe)
	require.DirExists(t, filepath.Join(dir, "web_n1"))

	// Something lab did not write is never taken over.
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "web_n2"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "web_n2", "config"), []byte("lxc.uts.name = x\n"), 0o644))
	require.ErrorAs(t, p.Destroy(context.Background(), providers.Node{Lab: "web", Name: "n2", ID: "web_n2"}), &oe)

	// A container made before owners were recorded is still known by lab.
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "old-n3"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "old-n3", "config"), []byte("# Written by lab for node n3 of lab old. lab rewrites it; edit the lab file instead.\n"), 0o644))
	h, ok, err := header(filepath.Join(dir, "old-n3", "config"))
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, "old", h.Lab)
	assert.Equal(t, "n3", h.Node)

	require.NoError(t, p.Destroy(context.Background(), n))
	assert.NoDirExists(t, filepath.Join(dir, "web_n1"))
}
