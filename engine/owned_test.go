package engine

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/labctl/lab/providers"
	"github.com/labctl/lab/topology"
)

// A provider that makes its nodes' network itself gets no bridge from lab:
// it makes the network and serves the lab's names, kept current as nodes
// come and go, and removes it with the lab.
func TestProviderOwnsNetwork(t *testing.T) {
	r := newRig(t)
	r.p.Caps.OwnsNetwork = true
	e := r.engine()
	_, err := e.Up(context.Background(), r.topo(t, 1, 1), UpOptions{})
	require.NoError(t, err)
	assert.Empty(t, r.nets.bridges)
	assert.Empty(t, r.nets.hosts, "lab's dnsmasq serves nothing")
	names, ok := r.p.Networks()["lab-e-0"]
	require.True(t, ok, "the provider made the network")
	assert.Contains(t, names, "10.83.0.11 adm1\n")
	_, err = e.Up(context.Background(), r.topo(t, 2, 1), UpOptions{})
	require.NoError(t, err)
	assert.Contains(t, r.p.Networks()["lab-e-0"], " pg2\n", "a new node's name is served")
	st, err := e.Store.Load()
	require.NoError(t, err)
	assert.Equal(t, "lxc", st.Networks["lan"].Provider, "the state says who made it")
	require.NoError(t, e.Destroy(context.Background(), "e", false))
	assert.Empty(t, r.p.Networks(), "destroy has the provider remove it")
	assert.Empty(t, r.nets.bridges)
	r.p.Caps.OwnsNetwork = false
	_, err = r.engine().Up(context.Background(), r.topo(t, 1, 1), UpOptions{})
	require.NoError(t, err)
	assert.True(t, r.nets.bridges["lab-e-0"])
}

// A node whose instance went away with its member (removed from the
// cluster) is made again by the next up: lab does not first try to load
// its firewall into an instance that is not there.
func TestOwnedNodeGoneIsMadeAgain(t *testing.T) {
	r := newRig(t)
	r.p.Caps.OwnsNetwork = true
	e := r.engine()
	top := r.topo(t, 1, 1)
	_, err := e.Up(context.Background(), top, UpOptions{})
	require.NoError(t, err)
	require.NoError(t, r.p.Destroy(context.Background(), providers.Node{Name: "pg1"}))
	_, err = e.Up(context.Background(), top, UpOptions{})
	require.NoError(t, err)
	assert.Equal(t, providers.Running, r.p.Nodes()["pg1"])
}

// Nodes on a cluster member that went offline: status says which and
// where; up refuses to go on, naming them, until the member is back.
func TestOfflineMember(t *testing.T) {
	r := newRig(t)
	e := r.engine()
	top := r.topo(t, 1, 1)
	_, err := e.Up(context.Background(), top, UpOptions{})
	require.NoError(t, err)
	r.p.Where = map[string]providers.Location{"pg1": {Member: "m3"}, "web1": {Member: "m1", Online: true}}
	ns, _, err := e.Status(context.Background(), top)
	require.NoError(t, err)
	for _, s := range ns {
		switch s.Name {
		case "pg1":
			assert.Equal(t, "unreachable", s.State)
			assert.Equal(t, "m3", s.Member)
			assert.Contains(t, s.Note, "its member m3 is offline")
		case "web1":
			assert.Equal(t, "running", s.State)
			assert.Equal(t, "m1", s.Member)
		}
	}
	_, err = e.Up(context.Background(), top, UpOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "nodes on offline cluster members: pg1 on m3")
	r.p.Where["pg1"] = providers.Location{Member: "m3", Online: true}
	_, err = e.Up(context.Background(), top, UpOptions{})
	require.NoError(t, err)
}

// A firewall on a network its provider makes is put in force inside each
// guarded node; "host" is this host's port on the network and its gateway
// there, and since both are in the network's subnet, "from lan" does not
// let the host in: a drop of the host's other traffic comes first.
func TestFirewallInsideNodes(t *testing.T) {
	r := newRig(t)
	r.p.Caps.OwnsNetwork = true
	rules := r.nodeRules()
	top, err := topology.Parse([]byte(`name: e
networks: [{name: lan, subnet: 10.83.0.0/24}]
nodes:
  - role: web
  - role: pg
    firewall:
      - allow: {from: [web], tcp: [5432]}
      - allow: {from: [lan], tcp: [80]}
      - allow: {from: [host], tcp: [22]}
`), filepath.Join(r.dir, "lab.yaml"), r.dir)
	require.NoError(t, err)
	_, err = r.engine().Up(context.Background(), top, UpOptions{})
	require.NoError(t, err)
	pg := rules["pg1"]
	assert.Contains(t, pg, "ip saddr { 10.83.0.11 } tcp dport { 5432 } accept")
	hostAllow := strings.Index(pg, "ip saddr { 10.83.0.254, 10.83.0.1 } tcp dport { 22 } accept")
	hostDrop := strings.Index(pg, `ip saddr { 10.83.0.254, 10.83.0.1 } counter drop comment "lab: the host reaches pg1 only as its firewall allows"`)
	lanAllow := strings.Index(pg, "ip saddr { 10.83.0.0/24 } tcp dport { 80 } accept")
	assert.True(t, hostAllow >= 0 && hostAllow < hostDrop && hostDrop < lanAllow, "the host's allow, its drop, then the network's:\n%s", pg)
	assert.Contains(t, pg, `counter drop comment "lab: pg1 accepts only what its firewall allows"`)
	assert.NotContains(t, rules["web1"], "drop", "web has no firewall")
	assert.Nil(t, r.nets.policy, "no host policy for a provider's network")
}

// nodeRules records the rules lab loads inside each node (guardInside), by
// node: the map is filled as the fake provider runs them.
func (r *rig) nodeRules() map[string]string {
	var mu sync.Mutex
	rules := map[string]string{}
	r.p.ExecFunc = func(node string, cmd []string, eio providers.ExecIO) (int, error) {
		if len(cmd) == 3 && strings.Contains(cmd[2], "nftables.conf") {
			b, _ := io.ReadAll(eio.Stdin)
			mu.Lock()
			rules[node] = string(b)
			mu.Unlock()
		}
		return 0, nil
	}
	return rules
}

// A remote node that does not answer (its member going offline) is
// unknown after a while: status does not wait for the cluster's timeout.
func TestRemoteStateWait(t *testing.T) {
	r := newRig(t)
	e := r.engine()
	top := r.topo(t, 1, 1)
	_, err := e.Up(context.Background(), top, UpOptions{})
	require.NoError(t, err)
	old := remoteStateWait
	remoteStateWait = 50 * time.Millisecond
	t.Cleanup(func() { remoteStateWait = old })
	r.p.Caps.Remote = true
	r.p.StateDelay = 10 * time.Second
	start := time.Now()
	ns, _, err := e.Status(context.Background(), top)
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 5*time.Second)
	for _, s := range ns {
		assert.Equal(t, "unknown", s.State, s.Name)
	}
}
