package lxc

import (
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
	n := providers.Node{Lab: "todomvc", Name: "pg2", ID: "todomvc-pg2", CPUs: 1, Memory: 256 << 20,
		Image:      providers.Image{RootFS: "/cache/images/k/rootfs"},
		Interfaces: []providers.Interface{{Bridge: "lab-todomvc-0", Addr: netip.MustParsePrefix("10.80.0.32/24")}}}
	cfg := p.Config(n)
	for _, want := range []string{
		"lxc.uts.name = pg2\n",
		"lxc.rootfs.path = overlay:/cache/images/k/rootfs:/var/lib/lxc/todomvc-pg2/delta0\n",
		"lxc.net.0.link = lab-todomvc-0\n",
		"lxc.net.0.ipv4.address = 10.80.0.32/24 10.80.0.255\n",
		"lxc.signal.halt = SIGRTMIN+3\n",
		"lxc.net.0.hwaddr = " + MAC("todomvc", "pg2", 0) + "\n",
	} {
		assert.Contains(t, cfg, want)
	}
	assert.NotContains(t, cfg, "gateway", "nodes must have no default route")
	assert.Equal(t, MAC("todomvc", "pg2", 0), MAC("todomvc", "pg2", 0))
	assert.NotEqual(t, MAC("todomvc", "pg2", 0), MAC("todomvc", "pg1", 0))
	assert.True(t, strings.HasPrefix(MAC("a", "b", 0), "0a:"), "locally administered, unicast")
	assert.Equal(t, "10.1.3.255", providers.Broadcast(netip.MustParsePrefix("10.1.2.9/23")))
}
