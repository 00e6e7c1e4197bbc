package topology

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func loadString(t *testing.T, text string) *Topology {
	t.Helper()
	p := filepath.Join(t.TempDir(), "lab.yaml")
	require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
	top, err := Load(p)
	require.NoError(t, err)
	return top
}

// first: retires the lowest-numbered nodes and keeps every node's address.
func TestFirstKeepsNamesAndAddresses(t *testing.T) {
	both := loadString(t, "name: x\nnetworks: [{name: lan, subnet: 10.1.0.0/24}]\nnodes:\n  - {role: web}\n  - {role: db, count: 2}\n")
	later := loadString(t, "name: x\nnetworks: [{name: lan, subnet: 10.1.0.0/24}]\nnodes:\n  - {role: web}\n  - {role: db, count: 1, first: 2}\n")
	a, err := Expand(both, nil)
	require.NoError(t, err)
	b, err := Expand(later, nil)
	require.NoError(t, err)
	require.Len(t, b.Nodes, 2)
	assert.Equal(t, []string{"db2"}, later.Nodes[1].Names())
	assert.Nil(t, b.Node("db1"))
	assert.Equal(t, a.Node("db2").IP(), b.Node("db2").IP())
	assert.Equal(t, "10.1.0.32", b.Node("db2").IP().String())
	assert.Equal(t, 2, b.Node("db2").Index)
	assert.True(t, later.HasNode("db2"))
	assert.False(t, later.HasNode("db1"))
}

// An alias is served on the networks its node is on, and only there.
func TestDNSNamesWithAliases(t *testing.T) {
	top := loadString(t, `name: x
networks:
  - {name: live, subnet: 10.1.0.0/24, subnet6: "fd00:1::/64"}
  - {name: dev, subnet: 10.2.0.0/24, ipv6: false}
nodes:
  - {role: proxy, networks: [live, dev]}
  - {role: db, networks: [live], count: 2}
aliases:
  www: proxy1
  livedb: db2
`)
	lab, err := Expand(top, nil)
	require.NoError(t, err)
	assert.Equal(t, "10.1.0.11 proxy1\nfd00:1::11 proxy1\n10.1.0.31 db1\nfd00:1::31 db1\n10.1.0.32 db2\nfd00:1::32 db2\n"+
		"10.1.0.32 livedb\nfd00:1::32 livedb\n10.1.0.11 www\nfd00:1::11 www\n", lab.DNSNames("live", nil))
	assert.Equal(t, "10.2.0.11 proxy1\n10.2.0.11 www\n", lab.DNSNames("dev", nil))
	assert.NotContains(t, lab.Hosts(), "livedb", "aliases live in DNS only, so a change reaches running nodes")
}

// An alias of a role answers with each of its nodes that is not down.
func TestRoleAlias(t *testing.T) {
	top := loadString(t, `name: x
networks: [{name: lan, subnet: 10.1.0.0/24, ipv6: false}]
nodes:
  - {role: web, count: 3}
aliases: {www: web}
`)
	lab, err := Expand(top, nil)
	require.NoError(t, err)
	names := lab.DNSNames("lan", func(n string) bool { return n == "web2" })
	assert.Contains(t, names, "10.1.0.11 www\n10.1.0.13 www\n")
	assert.NotContains(t, names, "10.1.0.12 www")
	assert.Contains(t, names, "10.1.0.12 web2\n", "a node's own name stays")
	assert.Contains(t, lab.DNSNames("lan", nil), "10.1.0.12 www\n")
}
