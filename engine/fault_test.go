package engine

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/labctl/lab/plan"
	"github.com/labctl/lab/providers"
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
