package engine

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/labctl/lab/network"
	"github.com/labctl/lab/plan"
	"github.com/labctl/lab/providers"
	"github.com/labctl/lab/topology"
)

func TestFaultsRecordedAndHealed(t *testing.T) {
	r := newRig(t)
	e := r.engine()
	top := r.topo(t, 2, 2)
	_, err := e.Up(context.Background(), top, UpOptions{})
	require.NoError(t, err)

	f, err := e.Fault(context.Background(), top, FaultRequest{Kind: FaultPartition, Targets: []string{"pg1", "web"}})
	require.NoError(t, err)
	assert.Equal(t, "f1", f.ID)
	assert.Equal(t, []string{"pg1", "web1", "web2"}, f.Nodes)
	require.Len(t, r.nets.policy.Cuts, 1, "the partition is in the policy")
	assert.Equal(t, "10.83.0.31", r.nets.policy.Cuts[0].From[0].String())

	// The same fault twice is refused with the id in force; B A is A B.
	_, err = e.Fault(context.Background(), top, FaultRequest{Kind: FaultPartition, Targets: []string{"web", "pg1"}})
	var ue *UsageError
	require.ErrorAs(t, err, &ue)
	assert.Contains(t, err.Error(), "in force already as f1")
	_, err = e.Fault(context.Background(), top, FaultRequest{Kind: FaultPartition, Targets: []string{"pg", "pg1"}})
	require.ErrorAs(t, err, &ue)
	assert.Contains(t, err.Error(), "pg1 is on both sides")
	_, err = e.Fault(context.Background(), top, FaultRequest{Kind: FaultPause, Targets: []string{"nope1"}})
	var unk *UnknownNodeError
	require.ErrorAs(t, err, &unk)

	// pause: up leaves it paused; heal thaws it.
	p, err := e.Fault(context.Background(), top, FaultRequest{Kind: FaultPause, Targets: []string{"web2"}})
	require.NoError(t, err)
	assert.Equal(t, providers.Paused, r.p.Nodes()["web2"])
	pl, _, err := e.Plan(context.Background(), top)
	require.NoError(t, err)
	for _, s := range pl.Steps {
		if s.Node == "web2" {
			assert.Equal(t, plan.Keep, s.Action)
		}
	}
	healed, err := e.Heal(context.Background(), top, []string{p.ID}, false)
	require.NoError(t, err)
	assert.Equal(t, []string{"f2"}, healed)
	assert.Equal(t, providers.Running, r.p.Nodes()["web2"])

	// kill: heal starts it again.
	k, err := e.Fault(context.Background(), top, FaultRequest{Kind: FaultKill, Targets: []string{"pg2"}})
	require.NoError(t, err)
	assert.Equal(t, providers.Stopped, r.p.Nodes()["pg2"])
	_, err = e.Up(context.Background(), top, UpOptions{})
	require.NoError(t, err)
	assert.Equal(t, providers.Stopped, r.p.Nodes()["pg2"], "up leaves a killed node down")
	_, err = e.Heal(context.Background(), top, []string{k.ID}, false)
	require.NoError(t, err)
	assert.Equal(t, providers.Running, r.p.Nodes()["pg2"])

	// A fault on a node scaled away goes with it; heal --all the rest.
	_, err = e.Fault(context.Background(), top, FaultRequest{Kind: FaultPause, Targets: []string{"web2"}})
	require.NoError(t, err)
	_, err = e.Up(context.Background(), r.topo(t, 2, 1), UpOptions{})
	require.NoError(t, err)
	fs, err := e.Faults(context.Background(), r.topo(t, 2, 1))
	require.NoError(t, err)
	require.Len(t, fs, 1)
	assert.Equal(t, "f1", fs[0].ID)
	healed, err = e.Heal(context.Background(), r.topo(t, 2, 1), nil, true)
	require.NoError(t, err)
	assert.Equal(t, []string{"f1"}, healed)
	assert.Empty(t, r.nets.policy.Cuts)
}

// A role's alias answers with the role's nodes that run: a kill or pause
// fault, or a halt, takes a node out of it; heal and up put it back.
func TestRoleAliasFollowsLiveNodes(t *testing.T) {
	r := newRig(t)
	e := r.engine()
	ctx := context.Background()
	top, err := topology.Parse([]byte(`name: e
networks: [{name: lan, subnet: 10.83.0.0/24, ipv6: false}]
nodes:
  - {role: web, count: 3}
aliases: {www: web}
`), filepath.Join(r.dir, "lab.yaml"), r.dir)
	require.NoError(t, err)
	_, err = e.Up(ctx, top, UpOptions{})
	require.NoError(t, err)
	www := func() []string {
		r.nets.mu.Lock()
		defer r.nets.mu.Unlock()
		var out []string
		for _, l := range strings.Split(r.nets.hosts["lab-e-0"], "\n") {
			if a, ok := strings.CutSuffix(l, " www"); ok {
				out = append(out, a)
			}
		}
		return out
	}
	assert.Equal(t, []string{"10.83.0.11", "10.83.0.12", "10.83.0.13"}, www())
	k, err := e.Fault(ctx, top, FaultRequest{Kind: FaultKill, Targets: []string{"web1"}})
	require.NoError(t, err)
	p, err := e.Fault(ctx, top, FaultRequest{Kind: FaultPause, Targets: []string{"web3"}})
	require.NoError(t, err)
	assert.Equal(t, []string{"10.83.0.12"}, www())
	_, err = e.Heal(ctx, top, []string{k.ID, p.ID}, false)
	require.NoError(t, err)
	assert.Equal(t, []string{"10.83.0.11", "10.83.0.12", "10.83.0.13"}, www())
	require.NoError(t, e.Halt(ctx, top, []string{"web2"}))
	assert.Equal(t, []string{"10.83.0.11", "10.83.0.13"}, www())
	_, err = e.Up(ctx, top, UpOptions{})
	require.NoError(t, err)
	assert.Equal(t, []string{"10.83.0.11", "10.83.0.12", "10.83.0.13"}, www())
}

// On a network its provider makes (an LXD cluster's), a partition is cut
// inside the nodes it separates (their own nftables, kept for their next
// boot) and healed there; a delay is refused with the reason; kill goes
// through the provider.
func TestFaultsOnProviderNetwork(t *testing.T) {
	r := newRig(t)
	r.p.Caps.OwnsNetwork = true
	rules := r.nodeRules()
	e := r.engine()
	top := r.topo(t, 1, 1)
	_, err := e.Up(context.Background(), top, UpOptions{})
	require.NoError(t, err)
	require.Contains(t, rules, "pg1", "every node gets its own rules when it boots")
	assert.NotContains(t, rules["pg1"], "drop", "no firewall, no fault: nothing dropped")

	f, err := e.Fault(context.Background(), top, FaultRequest{Kind: FaultPartition, Targets: []string{"pg1", "web"}})
	require.NoError(t, err)
	assert.Contains(t, rules["pg1"], `ip saddr { 10.83.0.51 } counter drop comment "lab: fault f1"`)
	assert.Contains(t, rules["web1"], `ip saddr { 10.83.0.31 } counter drop comment "lab: fault f1"`)
	assert.NotContains(t, rules["adm1"], "fault f1")
	_, err = e.Heal(context.Background(), top, []string{f.ID}, false)
	require.NoError(t, err)
	assert.NotContains(t, rules["pg1"], "fault f1", "healed inside the node too")

	var ue *UsageError
	_, err = e.Fault(context.Background(), top, FaultRequest{Kind: FaultDelay, Targets: []string{"web1"}, Delay: network.Delay{Delay: 100 * time.Millisecond}})
	require.ErrorAs(t, err, &ue)
	assert.Contains(t, err.Error(), "fault delay: node web1 is on a network provider lxc makes")
	assert.Contains(t, err.Error(), "kill, pause and partition work")
	k, err := e.Fault(context.Background(), top, FaultRequest{Kind: FaultKill, Targets: []string{"pg1"}})
	require.NoError(t, err)
	assert.Equal(t, providers.Stopped, r.p.Nodes()["pg1"])
	_, err = e.Heal(context.Background(), top, []string{k.ID}, false)
	require.NoError(t, err)
	assert.Equal(t, providers.Running, r.p.Nodes()["pg1"])
}
