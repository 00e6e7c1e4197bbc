package lxd

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/labctl/lab/providers"
)

func TestCreateRequest(t *testing.T) {
	n := providers.Node{Lab: "todo_mvc", Name: "pg1", Owner: "/src/todomvc/.lab", CPUs: 1, Memory: 512 << 20, Unprivileged: true,
		Image: providers.Image{Key: "bookworm-0123456789ab"},
		Interfaces: []providers.Interface{{Bridge: "lab-todomvc-0", Addr: netip.MustParsePrefix("10.80.0.31/24"),
			Addr6: netip.MustParsePrefix("fd00::31/64")}}}
	r := createRequest(n)
	assert.Equal(t, "todo-mvc-pg1", r["name"], "LXD names take letters, digits and hyphens")
	assert.Equal(t, map[string]string{"type": "image", "alias": "lab-bookworm-0123456789ab"}, r["source"])
	c := r["config"].(map[string]string)
	assert.Equal(t, "false", c["security.privileged"])
	assert.Equal(t, "1", c["limits.cpu"])
	assert.Equal(t, "536870912", c["limits.memory"])
	assert.Equal(t, "/src/todomvc/.lab", c["user.lab.owner"])
	assert.Equal(t, "lxc.uts.name = pg1\nlxc.net.0.ipv4.address = 10.80.0.31/24\nlxc.net.0.ipv6.address = fd00::31/64\n"+
		"lxc.sysctl.net.ipv6.conf.eth0.accept_ra = 0\nlxc.sysctl.net.ipv6.conf.eth0.autoconf = 0", c["raw.lxc"])
	assert.Equal(t, map[string]string{"type": "nic", "network": "lab-todomvc-0", "name": "eth0"}, r["devices"].(map[string]any)["eth0"])
}

func TestErrorsNameRemoteAndOperation(t *testing.T) {
	assert.Equal(t, "network create", opOf([]string{"--project", "lab", "network", "create", "x", "--target", "m1"}))
	assert.Equal(t, "delete", opOf([]string{"delete", "--force", "x"}))
	for _, c := range []struct {
		method, path string
		body         any
		want         string
	}{
		{"POST", "/1.0/instances?target=m3&project=lab", map[string]any{"name": "lxdl-db1"}, "create instance lxdl-db1 on member m3"},
		{"PUT", "/1.0/instances/lxdl-db1/state", map[string]any{"action": "freeze"}, "freeze lxdl-db1"},
		{"GET", "/1.0/instances/lxdl-db1/state", nil, "state of lxdl-db1"},
		{"PATCH", "/1.0/networks/lab-lxdl-0", nil, "update network lab-lxdl-0"},
		{"POST", "/1.0/networks?target=m2", map[string]any{"name": "lab-lxdl-0"}, "create network lab-lxdl-0 on member m2"},
		{"GET", "/1.0/images/aliases/lab-bookworm-1", nil, "get image lab-bookworm-1"},
		{"GET", "/1.0/cluster/members?recursion=1", nil, "GET /1.0/cluster/members?recursion=1"},
	} {
		assert.Equal(t, c.want, restOp(c.method, c.path, c.body), "%s %s", c.method, c.path)
	}
	e := &Error{Remote: "mycluster", Op: "init", Msg: "Failed to create instance: no space left on device"}
	assert.Equal(t, "lxd mycluster: init: Failed to create instance: no space left on device", e.Error())
	assert.True(t, notFound(&Error{Msg: "Instance not found"}))
	assert.False(t, notFound(nil))
}

func TestMetadataTar(t *testing.T) {
	tr := tar.NewReader(bytes.NewReader(metadataTar("bookworm-0123456789ab", time.Unix(1700000000, 0))))
	h, err := tr.Next()
	require.NoError(t, err)
	assert.Equal(t, "metadata.yaml", h.Name)
	b, _ := io.ReadAll(tr)
	assert.Contains(t, string(b), "architecture: x86_64\ncreation_date: 1700000000\n")
	assert.Contains(t, string(b), "description: lab image bookworm-0123456789ab")
}

func TestNetworkConfig(t *testing.T) {
	n := Net{Name: "lab-todomvc-0", Subnet: netip.MustParsePrefix("10.80.0.0/24"), Gateway: netip.MustParseAddr("10.80.0.1"),
		TunnelDev: "eth0", Domain: "todomvc.lab"}
	single := n.config(false)
	assert.Equal(t, "10.80.0.1/24", single["ipv4.address"])
	assert.Equal(t, "false", single["ipv4.nat"], "no way out of the lab")
	assert.NotContains(t, single, "tunnel.t.protocol", "one server: no tunnel")
	c := n.config(true)
	assert.Equal(t, "vxlan", c["tunnel.t.protocol"])
	assert.Equal(t, "eth0", c["tunnel.t.interface"])
	assert.Equal(t, c["tunnel.t.id"], Net{Name: "lab-todomvc-0"}.config(true)["tunnel.t.id"], "the id is the name's")
	assert.NotEqual(t, c["tunnel.t.id"], Net{Name: "lab-todomvc-1"}.config(true)["tunnel.t.id"])
	assert.Equal(t, "host-record=pg1.todomvc.lab,pg1,10.80.0.31\nhost-record=pg1.todomvc.lab,pg1,fd00::31\n"+
		"host-record=www.todomvc.lab,www,10.80.0.11\nhost-record=www.todomvc.lab,www,10.80.0.12\n",
		hostRecords("todomvc.lab", "10.80.0.31 pg1\nfd00::31 pg1\n10.80.0.11 www\n10.80.0.12 www\n\n"),
		"every address of a name, a role's alias one per node")
	assert.Equal(t, "", hostRecords("x.lab", ""))
	assert.Equal(t, "lab-todomvc-0", netName("lab-todomvc-0"), "a name whose tunnel fits stays")
	long := netName("lab-swefreq1-0")
	assert.Regexp(t, `^lab-[0-9a-f]{8}$`, long, "lab-swefreq1-0-t would pass 15 characters")
	assert.NotEqual(t, long, netName("lab-swefreq1-1"))
	n.Subnet6, n.Gateway6 = netip.MustParsePrefix("fd00::/64"), netip.MustParseAddr("fd00::1")
	assert.Equal(t, "fd00::1/64", n.config(true)["ipv6.address"], "dual stack")
}

// Without LXD's client, the error says what to install.
func TestNoClient(t *testing.T) {
	p := New("", "")
	p.c.bin = "lab-no-such-lxc"
	_, err := p.State(context.Background(), providers.Node{Lab: "x", Name: "n1"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "node n1: lxd local: state of x-n1: provider lxd drives LXD through its client, lxc, which is not installed (Debian: apt install lxd-client)")
}

// A restored instance has lab's configuration for its node, the saved
// disk's shift state, and the MACs of the instance it replaces (a clone
// of web1 into web3 is reached at web3's MAC, which web3's neighbours
// know), never the saved node's name or addresses.
func TestRestoredConfig(t *testing.T) {
	lab := map[string]string{"user.lab.node": "web3", "raw.lxc": "lxc.net.0.ipv4.address = 10.80.0.13/24"}
	saved := map[string]string{"user.lab.node": "web1", "raw.lxc": "lxc.net.0.ipv4.address = 10.80.0.11/24",
		"volatile.eth0.hwaddr": "00:16:3e:00:00:01", "volatile.last_state.idmap": "[saved]", "volatile.idmap.next": "[saved]", "volatile.uuid": "u1"}
	replaced := map[string]string{"volatile.eth0.hwaddr": "00:16:3e:00:00:03", "volatile.last_state.idmap": "[fresh]", "volatile.uuid": "u3"}
	assert.Equal(t, map[string]string{
		"user.lab.node": "web3", "raw.lxc": "lxc.net.0.ipv4.address = 10.80.0.13/24",
		"volatile.eth0.hwaddr": "00:16:3e:00:00:03", "volatile.uuid": "u3",
		"volatile.last_state.idmap": "[saved]", "volatile.idmap.next": "[saved]",
	}, restoredConfig(lab, saved, replaced))
}
