package topology

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lxd: {remote, project} for the lab and lxd: {target} for a role reach
// the expanded nodes; a target is refused on a role of another provider,
// with the line.
func TestLXDPlacement(t *testing.T) {
	top := loadString(t, `name: c
defaults: {provider: lxd}
lxd: {remote: mycluster, project: lab}
nodes:
  - role: pg
    count: 2
    lxd: {target: member2}
  - role: web
`)
	assert.Equal(t, LXD{Remote: "mycluster", Project: "lab"}, top.LXD)
	lab, err := Expand(top, nil)
	require.NoError(t, err)
	assert.Equal(t, "member2", lab.Nodes[0].Target)
	assert.Equal(t, "member2", lab.Nodes[1].Target)
	assert.Equal(t, "", lab.Nodes[2].Target, "LXD's scheduler places it")

	for text, want := range map[string]string{
		"name: c\nnodes:\n  - role: pg\n    provider: lxc\n    lxd: {target: m2}\n":        "lab.yaml:5: nodes[0].lxd.target: pins nodes to an LXD cluster member, but role pg's provider is lxc, not lxd",
		"name: c\ndefaults: {provider: lxd}\nnodes:\n  - role: pg\n    lxd: {}\n":          "nodes[0].lxd.target: required",
		"name: c\ndefaults: {provider: lxd}\nnodes:\n  - {role: pg, lxd: {target: a/b}}\n": `nodes[0].lxd.target: "a/b"`,
		"name: c\nlxd: {remote: \"my remote\"}\nnodes:\n  - role: pg\n":                    `lab.yaml:2: lxd.remote: "my remote"`,
		"name: c\nlxd: {projekt: x}\nnodes:\n  - role: pg\n":                               "lxd.projekt",
	} {
		p := filepath.Join(t.TempDir(), "lab.yaml")
		require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
		_, err := Load(p)
		require.Error(t, err, text)
		assert.Contains(t, err.Error(), want, text)
	}
}
