// Package diagram draws a lab: its networks, the roles on each and their
// nodes (address, provider), the roles' after edges, and the traffic each
// firewall lets in, as Mermaid (which GitHub renders in Markdown) or
// Graphviz DOT.
package diagram

import (
	"fmt"
	"strings"

	"github.com/labctl/lab/topology"
)

// Formats are the names Render accepts.
var Formats = []string{"mermaid", "dot"}

// Render draws the lab in one of Formats.
func Render(lab *topology.Lab, format string) (string, error) {
	switch format {
	case "mermaid":
		return build(lab).mermaid(), nil
	case "dot":
		return build(lab).dot(), nil
	}
	return "", fmt.Errorf("unknown format %q (known: %s)", format, strings.Join(Formats, ", "))
}

// A graph is what either format draws.
type graph struct {
	title string
	nets  []*group // each holds role groups
	host  bool     // some rule lets the host in
	edges []edge
	// firstNode is an id of a node inside each group, which DOT's edges
	// between clusters need.
	firstNode map[string]string
	roles     map[string]*group
}

type group struct {
	id, label string
	roles     []*group
	nodes     []box
}

type box struct{ id, label string }

type edge struct {
	from, to, label string
	after           bool // an after edge (dashed); else traffic a firewall lets in
}

func ident(prefix, name string) string { return prefix + strings.ReplaceAll(name, "-", "_") }

func build(lab *topology.Lab) *graph {
	g := &graph{title: "lab " + lab.Name, firstNode: map[string]string{}, roles: map[string]*group{}}
	nets := map[string]*group{}
	for _, n := range lab.Networks {
		label := n.Name + " · " + n.Subnet.String()
		if n.Domain != "" {
			label += " · " + n.Domain
		}
		grp := &group{id: ident("net_", n.Name), label: label}
		nets[n.Name] = grp
		g.nets = append(g.nets, grp)
	}
	for i := range lab.Topology.Nodes {
		g.addRole(lab, &lab.Topology.Nodes[i], nets)
	}
	for i := range lab.Topology.Nodes {
		g.addEdges(lab, &lab.Topology.Nodes[i])
	}
	return g
}

// addRole puts a role's group, with its nodes, in the network of its first
// network (a node on more networks lists its other addresses).
func (g *graph) addRole(lab *topology.Lab, r *topology.Role, nets map[string]*group) {
	label := r.Role
	if r.HasFirewall() {
		label += " (firewall)"
	}
	rg := &group{id: ident("role_", r.Role), label: label}
	for _, n := range lab.RoleNodes(r.Role) {
		var addrs []string
		for _, itf := range n.Interfaces {
			addrs = append(addrs, itf.Addr.String())
		}
		id := ident("n_", n.Name)
		rg.nodes = append(rg.nodes, box{id, n.Name + "\n" + strings.Join(addrs, ", ") + " · " + n.Provider})
	}
	if len(rg.nodes) == 0 {
		rg.nodes = append(rg.nodes, box{ident("empty_", r.Role), "count: 0"})
	}
	g.firstNode[rg.id] = rg.nodes[0].id
	g.roles[rg.id] = rg
	net := ""
	switch nodes := lab.RoleNodes(r.Role); {
	case len(nodes) > 0 && len(nodes[0].Interfaces) > 0:
		net = nodes[0].Interfaces[0].Network
	case len(r.Networks) > 0:
		net = r.Networks[0]
	case len(lab.Networks) > 0:
		net = lab.Networks[0].Name
	}
	if ng := nets[net]; ng != nil {
		ng.roles = append(ng.roles, rg)
		if _, ok := g.firstNode[ng.id]; !ok {
			g.firstNode[ng.id] = rg.nodes[0].id
		}
	}
}

func (g *graph) addEdges(lab *topology.Lab, r *topology.Role) {
	to := ident("role_", r.Role)
	for _, a := range r.After {
		g.edges = append(g.edges, edge{from: to, to: ident("role_", a), label: "after", after: true})
	}
	for _, rule := range r.Firewall {
		if rule.Allow == nil {
			continue
		}
		for _, f := range rule.Allow.From {
			from := g.source(lab, f)
			if from == to { // a loop on a group draws badly: say it in the role's label
				g.roles[to].label += "\nfrom " + r.Role + ": " + rule.Allow.Traffic()
				continue
			}
			g.edges = append(g.edges, edge{from: from, to: to, label: rule.Allow.Traffic()})
		}
	}
}

// source is the id a firewall's from name is drawn as.
func (g *graph) source(lab *topology.Lab, name string) string {
	switch {
	case name == topology.HostSource:
		g.host = true
		return "host"
	case lab.RoleByName(name) != nil:
		return ident("role_", name)
	case lab.Network(name) != nil:
		return ident("net_", name)
	}
	return ident("n_", name)
}
