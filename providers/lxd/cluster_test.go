package lxd

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/labctl/lab/image"
	"github.com/labctl/lab/labtest"
	"github.com/labctl/lab/providers"
)

// Three nodes on a 3-member cluster (the test bed of docs/lxd.md): they
// land on more than one member, reach each other across members by address
// and by name, and destroy leaves no instance, network or image behind.
func TestIntegrationCluster(t *testing.T) {
	labtest.Integration(t)
	cl := labtest.NewLXDCluster(t, 3, "10.97.250")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	c := &image.Cache{Dir: "/var/cache/lab"}
	img, err := c.Ensure(ctx, image.Spec{Suite: "bookworm", Packages: providers.ContainerPackages}, nil)
	require.NoError(t, err)
	p := New("", "")
	p.c.bin, p.c.env = filepath.Join(cl.Bin, "lxc"), cl.Env
	net := Net{Name: "lab-lxdc-0", Subnet: netip.MustParsePrefix("10.97.251.0/24"), Gateway: netip.MustParseAddr("10.97.251.1"),
		TunnelDev: "eth0", Domain: "lxdc.lab"}
	require.NoError(t, p.ensureNetwork(ctx, net))
	var hosts strings.Builder
	var nodes []providers.Node
	for i := 1; i <= 3; i++ {
		addr := netip.MustParseAddr(fmt.Sprintf("10.97.251.1%d", i))
		n := providers.Node{Lab: "lxdc", Name: fmt.Sprintf("n%d", i), Unprivileged: true, Owner: t.TempDir(),
			Image:      providers.Image{Key: img.Key, RootFS: img.RootFS},
			Interfaces: []providers.Interface{{Bridge: net.Name, Addr: netip.PrefixFrom(addr, 24)}}}
		nodes = append(nodes, n)
		fmt.Fprintf(&hosts, "%s %s\n", addr, n.Name)
	}
	require.NoError(t, p.setHosts(ctx, net, hosts.String()))
	t.Cleanup(func() {
		for _, n := range nodes {
			assert.NoError(t, p.Destroy(context.Background(), n))
		}
		assert.NoError(t, p.removeNetwork(context.Background(), net.Name))
		assert.Equal(t, "", strings.TrimSpace(cl.Lxc(t, "list", "-f", "csv")))
		assert.NotContains(t, cl.Lxc(t, "network", "list", "-f", "csv"), net.Name)
		assert.Equal(t, "", strings.TrimSpace(cl.Lxc(t, "image", "list", "-f", "csv")))
	})
	for _, n := range nodes {
		require.NoError(t, p.Create(ctx, n))
		if err := p.Start(ctx, n); err != nil {
			logs, _ := filepath.Glob(filepath.Join(cl.Dir, "m*", "logs", instance(n), "lxc.log"))
			var b []byte
			for _, l := range logs {
				more, _ := os.ReadFile(l)
				b = append(append(b, l+":\n"...), more...)
			}
			require.NoError(t, err, "%s", b)
		}
	}
	where := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(cl.Lxc(t, "list", "-f", "csv", "-c", "nL")), "\n") {
		where[strings.Split(l, ",")[1]] = true
	}
	assert.GreaterOrEqual(t, len(where), 2, "LXD spread the nodes over its members")
	for _, n := range nodes {
		var out strings.Builder
		code, err := p.Exec(ctx, n, []string{"sh", "-c", "echo nameserver 10.97.251.1 > /etc/resolv.conf; ping -c1 -W2 n3.lxdc.lab && ping -c1 -W2 10.97.251.11"}, providers.ExecIO{Stdout: &out, Stderr: &out})
		require.NoError(t, err)
		assert.Equal(t, 0, code, "%s: %s", n.Name, out.String())
	}
}
