package topology

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPrivilegedAndNesting(t *testing.T) {
	top := loadString(t, `name: p
nodes:
  - role: a
  - role: b
    privileged: true
    nesting: true
  - role: c
    privileged: false
`)
	lab, err := Expand(top, nil)
	require.NoError(t, err)
	assert.False(t, lab.Nodes[0].Privileged, "nodes are unprivileged unless the file says otherwise")
	assert.False(t, lab.Nodes[0].Nesting)
	assert.True(t, lab.Nodes[1].Privileged)
	assert.True(t, lab.Nodes[1].Nesting)
	assert.False(t, lab.Nodes[2].Privileged)
	assert.Equal(t, []string{"lab.yaml:5: nodes[1].privileged: true: root in these nodes is root on the host (a script's mistake there is one on this machine); keep it for what needs it"}, top.Warnings(),
		"a privileged: true the file writes is warned of")

	top = loadString(t, "name: p\ndefaults: {privileged: false}\nnodes:\n  - role: a\n  - {role: b, privileged: true}\n  - {role: c, privileged: true}\n")
	lab, err = Expand(top, nil)
	require.NoError(t, err)
	assert.False(t, lab.Nodes[0].Privileged, "defaults apply")
	assert.True(t, lab.Nodes[1].Privileged, "a role may say otherwise")
	w := top.Warnings()
	require.Len(t, w, 1, "one warning for the lab")
	assert.Contains(t, w[0], "lab.yaml:5: nodes[1].privileged: true")
	assert.Contains(t, w[0], "(and 1 more roles)")

	assert.Empty(t, loadString(t, "name: p\nnodes:\n  - {role: a}\n").Warnings())
	w = loadString(t, "name: p\ndefaults: {privileged: true}\nnodes:\n  - {role: a}\n").Warnings()
	require.Len(t, w, 1)
	assert.Contains(t, w[0], "lab.yaml:2: defaults.privileged: true")
}
