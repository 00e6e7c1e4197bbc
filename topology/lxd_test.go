package topology

import (
	"net/netip"
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
  - role: db
    count: 3
    lxd: {target: [m1, m2]}
`)
	assert.Equal(t, LXD{Remote: "mycluster", Project: "lab"}, top.LXD)
	lab, err := Expand(top, nil)
	require.NoError(t, err)
	assert.Equal(t, "member2", lab.Nodes[0].Target)
	assert.Equal(t, "member2", lab.Nodes[1].Target)
	assert.Equal(t, "", lab.Nodes[2].Target, "LXD's scheduler places it")
	assert.Equal(t, []string{"m1", "m2", "m1"}, []string{lab.Nodes[3].Target, lab.Nodes[4].Target, lab.Nodes[5].Target}, "a list: the role's nodes go round it")

	for text, want := range map[string]string{
		"name: c\nnodes:\n  - role: pg\n    provider: lxc\n    lxd: {target: m2}\n":                                        "lab.yaml:5: nodes[0].lxd.target: pins nodes to an LXD cluster member, but role pg's provider is lxc, not lxd",
		"name: c\ndefaults: {provider: lxd}\nnodes:\n  - role: pg\n    lxd: {}\n":                                          "nodes[0].lxd.target: required",
		"name: c\ndefaults: {provider: lxd}\nnodes:\n  - {role: pg, lxd: {target: a/b}}\n":                                 `nodes[0].lxd.target: "a/b"`,
		"name: c\ndefaults: {provider: lxd}\nnodes:\n  - role: pg\n    lxd:\n      target:\n        - m1\n        - a b\n": `lab.yaml:8: nodes[0].lxd.target[1]: "a b"`,
		"name: c\ndefaults: {provider: lxd}\nnodes:\n  - {role: pg, lxd: {target: []}}\n":                                  "nodes[0].lxd.target: required",
		"name: c\nlxd: {remote: \"my remote\"}\nnodes:\n  - role: pg\n":                                                    `lab.yaml:2: lxd.remote: "my remote"`,
		"name: c\nlxd: {projekt: x}\nnodes:\n  - role: pg\n":                                                               "lxd.projekt",
	} {
		p := filepath.Join(t.TempDir(), "lab.yaml")
		require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
		_, err := Load(p)
		require.Error(t, err, text)
		assert.Contains(t, err.Error(), want, text)
	}
}

// The host's port on a provider's network is the subnet's last usable
// address, and no node of any role of any size of subnet gets it.
func TestHostPortIsNoNodes(t *testing.T) {
	n := Net{Subnet: netip.MustParsePrefix("10.80.0.0/24"), Subnet6: netip.MustParsePrefix("fd00:1::/64")}
	v4, v6 := n.HostPort()
	assert.Equal(t, "10.80.0.254", v4.String())
	assert.Equal(t, "fd00:1::254", v6.String())
	v4, v6 = Net{Subnet: netip.MustParsePrefix("10.80.0.0/16")}.HostPort()
	assert.Equal(t, "10.80.255.254", v4.String())
	assert.False(t, v6.IsValid())
	for bits := MinPrefixBits; bits <= MaxPrefixBits; bits++ {
		p := netip.PrefixFrom(netip.MustParseAddr("10.0.0.0"), bits)
		last := ReservedHosts + MaxRoles*BlockSize(p)
		host, _ := Net{Subnet: p}.HostPort()
		assert.Greater(t, int(host.As4()[3])+int(host.As4()[2])<<8+int(host.As4()[1])<<16, last, "/%d: the last node is host %d", bits, last)
	}
}
