package diagram

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/labctl/lab/topology"
)

const labFile = `
name: shop
networks:
  - {name: front, subnet: 10.99.1.0/24, domain: shop.lab}
  - {name: back, subnet: 10.99.2.0/24}
nodes:
  - role: web
    count: 2
    networks: [front, back]
    after: [db]
  - role: db
    networks: [back]
    firewall:
      - allow: {from: [web, host], tcp: [5432]}
      - allow: {from: [db], tcp: [5432]}
  - role: spare
    count: 0
`

func render(t *testing.T, format string) string {
	top, err := topology.Parse([]byte(labFile), "lab.yaml", t.TempDir())
	require.NoError(t, err)
	lab, err := topology.Expand(top, nil)
	require.NoError(t, err)
	out, err := Render(lab, format)
	require.NoError(t, err)
	return out
}

func TestMermaid(t *testing.T) {
	out := render(t, "mermaid")
	for _, want := range []string{
		"flowchart LR\n",
		`  host(["host"])`,
		`  subgraph net_front["front · 10.99.1.0/24 · shop.lab"]`,
		`    subgraph role_web["web"]`,
		`      n_web1["web1<br/>10.99.1.11, 10.99.2.11 · lxc"]`,
		`    subgraph role_db["db (firewall)<br/>from db: tcp 5432"]`,
		`      empty_spare["count: 0"]`,
		`  role_web -. after .-> role_db`,
		`  role_web -->|"tcp 5432"| role_db`,
		`  host -->|"tcp 5432"| role_db`,
	} {
		assert.Contains(t, out, want)
	}
	assert.Equal(t, strings.Count(out, "subgraph "), strings.Count(out, "end\n"), "every subgraph ends")
}

func TestDot(t *testing.T) {
	out := render(t, "dot")
	for _, want := range []string{
		`digraph "lab shop" {`,
		`  subgraph cluster_net_back {`,
		`      n_db1 [label="db1\n10.99.2.31 · lxc"];`,
		`  n_web1 -> n_db1 [ltail=cluster_role_web, lhead=cluster_role_db, label="after", style=dashed];`,
		`  host -> n_db1 [lhead=cluster_role_db, label="tcp 5432"];`,
	} {
		assert.Contains(t, out, want)
	}
	assert.Equal(t, strings.Count(out, "{"), strings.Count(out, "}"))
	_, err := Render(nil, "svg")
	assert.ErrorContains(t, err, `unknown format "svg"`)
}
