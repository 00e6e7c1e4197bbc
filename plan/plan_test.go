package plan

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/labctl/lab/providers"
	"github.com/labctl/lab/state"
	"github.com/labctl/lab/topology"
)

func expand(t *testing.T, pg, web int) *topology.Lab {
	t.Helper()
	src := fmt.Sprintf("name: p\nnetworks: [{name: lan, subnet: 10.82.0.0/24}]\nnodes:\n  - {role: pg, count: %d}\n  - {role: web, count: %d, after: [pg]}\n", pg, web)
	top, err := topology.Parse([]byte(src), "lab.yaml", t.TempDir())
	require.NoError(t, err)
	lab, err := topology.Expand(top, nil)
	require.NoError(t, err)
	return lab
}

// record makes the state as if lab up had fully run.
func record(lab *topology.Lab) (*state.State, Observed) {
	st := state.New(lab.Name, "lab.yaml")
	obs := Observed{}
	for _, n := range lab.Networks {
		st.Networks[n.Name] = &state.Network{Name: n.Name, Bridge: n.Bridge, Subnet: n.Subnet.String()}
	}
	for _, n := range lab.Nodes {
		st.Nodes[n.Name] = &state.Node{Name: n.Name, Role: n.Role, Index: n.Index, Provider: n.Provider, Phase: state.PhaseRunning,
			Addresses: []string{n.IP().String()}, Provision: &state.Provisioning{Done: true}}
		obs[n.Name] = providers.Running
	}
	return st, obs
}

func TestFreshLab(t *testing.T) {
	p := Diff(expand(t, 2, 1), nil, nil, nil)
	assert.Equal(t, []string{"pg1", "pg2", "web1"}, p.Nodes(Create))
	require.Len(t, p.Networks, 1)
	assert.True(t, p.Changes())
	assert.Contains(t, p.String(), "3 to create")
}

func TestUnchanged(t *testing.T) {
	lab := expand(t, 2, 2)
	st, obs := record(lab)
	p := Diff(lab, st, obs, nil)
	assert.False(t, p.Changes())
	assert.Len(t, p.Nodes(Keep), 4)
}

func TestScaleUp(t *testing.T) {
	st, obs := record(expand(t, 2, 1))
	p := Diff(expand(t, 3, 2), st, obs, nil)
	assert.Equal(t, []string{"pg3", "web2"}, p.Nodes(Create))
	assert.Equal(t, []string{"pg1", "pg2", "web1"}, p.Nodes(Keep))
	assert.Empty(t, p.Nodes(Destroy))
}

func TestScaleDownRemovesHighestFirst(t *testing.T) {
	st, obs := record(expand(t, 4, 2))
	p := Diff(expand(t, 1, 2), st, obs, nil)
	assert.Equal(t, []string{"pg4", "pg3", "pg2"}, p.Nodes(Destroy))
	assert.Empty(t, p.Nodes(Create))
	for _, s := range p.Steps {
		if s.Action == Destroy {
			assert.Equal(t, "scaled down", s.Reason)
		}
	}
}

func TestRoleRemoved(t *testing.T) {
	st, obs := record(expand(t, 1, 2))
	top, err := topology.Parse([]byte("name: p\nnetworks: [{name: lan, subnet: 10.82.0.0/24}]\nnodes: [{role: pg}]\n"), "lab.yaml", t.TempDir())
	require.NoError(t, err)
	lab, err := topology.Expand(top, nil)
	require.NoError(t, err)
	p := Diff(lab, st, obs, nil)
	assert.Equal(t, []string{"web2", "web1"}, p.Nodes(Destroy))
	assert.Contains(t, p.String(), "not in the topology")
}

func TestObservedStates(t *testing.T) {
	lab := expand(t, 3, 1)
	st, obs := record(lab)
	obs["pg1"] = providers.Stopped
	obs["pg2"] = providers.Absent
	st.Nodes["pg3"].Provision.Done = false
	st.Nodes["web1"].Phase = state.PhaseCreating
	p := Diff(lab, st, obs, nil)
	assert.Equal(t, []string{"pg1"}, p.Nodes(Start))
	assert.Equal(t, []string{"pg2", "web1"}, p.Nodes(Create))
	assert.Equal(t, []string{"pg3"}, p.Nodes(Provision))
}

func TestImageOrProviderChangeReplaces(t *testing.T) {
	lab := expand(t, 2, 1)
	st, obs := record(lab)
	for _, n := range st.Nodes {
		n.Image = "old"
	}
	st.Nodes["web1"].Provider = "libvirt"
	p := Diff(lab, st, obs, map[string]string{"pg1": "new", "pg2": "old", "web1": "old"})
	assert.Equal(t, []string{"pg1", "web1"}, p.Nodes(Replace))
	assert.Equal(t, []string{"pg2"}, p.Nodes(Keep))
}

// The JSON of lab plan --json is a documented, versioned schema
// (docs/json.md): its field names must not drift.
func TestPlanJSONSchema(t *testing.T) {
	lab := expand(t, 1, 1)
	b, err := json.Marshal(Diff(lab, nil, nil, nil))
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(b, &doc))
	assert.EqualValues(t, 1, doc["version"])
	assert.Equal(t, "p", doc["lab"])
	step := doc["steps"].([]any)[0].(map[string]any)
	assert.Equal(t, map[string]any{"node": "pg1", "role": "pg", "index": float64(1), "action": "create", "reason": "new node", "address": "10.82.0.11"}, step)
	net := doc["networks"].([]any)[0].(map[string]any)
	assert.Equal(t, map[string]any{"network": "lan", "action": "create", "bridge": "lab-p-0", "subnet": "10.82.0.0/24", "address": "10.82.0.1"}, net)
}

// A node made privileged (before nodes could be anything else) is replaced
// when the lab file's node is unprivileged, and the other way round.
func TestPrivilegeChangeReplaces(t *testing.T) {
	lab := expand(t, 1, 1)
	st, obs := record(lab)
	lab.Nodes[0].Unprivileged = true
	p := Diff(lab, st, obs, nil)
	require.Equal(t, []string{"pg1"}, p.Nodes(Replace))
	assert.Contains(t, p.Steps[0].Reason, "privileged → unprivileged")
	st.Nodes["pg1"].Unprivileged = true
	assert.False(t, Diff(lab, st, obs, nil).Changes())
	lab.Nodes[0].Unprivileged = false
	p = Diff(lab, st, obs, nil)
	require.Equal(t, []string{"pg1"}, p.Nodes(Replace))
	assert.Contains(t, p.Steps[0].Reason, "unprivileged → privileged")
}
