package topology

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// MaxAliases bounds the aliases a lab file may give.
const MaxAliases = 256

// validateAliases checks `aliases:`: each is a DNS label that no node has,
// naming a node the file makes, or a role (the alias answers with each of
// its nodes that runs, in rotation: a DNS load balancer).
func (t *Topology) validateAliases(at reporter) {
	if len(t.Aliases) > MaxAliases {
		at("aliases", "%d aliases; at most %d", len(t.Aliases), MaxAliases)
		return
	}
	roles := map[string]bool{}
	for _, r := range t.Nodes {
		roles[r.Role] = true
	}
	for _, alias := range t.AliasNames() {
		node := t.Aliases[alias]
		path := "aliases." + alias
		switch {
		case !nameRe.MatchString(alias) || len(alias) > MaxLabelLen:
			at(path, "%q: an alias is a DNS name: lowercase letters, digits and '-', starting with a letter", Cut(alias))
		case alias == "localhost":
			at(path, "localhost: every node already has it")
		case t.HasNode(alias):
			at(path, "%q is already a node's name", alias)
		}
		switch {
		case node == "":
			at(path, "required: the node (or role) the alias names")
		case roles[node]:
		case !t.HasNode(node):
			at(path, "%s", t.noNode(node))
		}
	}
}

// AliasNames returns the aliases in a stable order.
func (t *Topology) AliasNames() []string {
	out := make([]string, 0, len(t.Aliases))
	for a := range t.Aliases {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// DNSNames are the "IP name" lines the DNS of one network serves: each node
// on it, then each alias: of a node, when that node is on it; of a role,
// each of the role's nodes on it that is not down (halted, killed or
// paused), so the name answers with the live ones in turn. On a dual-stack
// network each name has its IPv6 line too (AAAA).
func (l *Lab) DNSNames(network string, down func(node string) bool) string {
	var b strings.Builder
	line := func(n *Node, name string) {
		if a := n.AddrOn(network); a.IsValid() {
			fmt.Fprintf(&b, "%s %s\n", a, name)
		}
		if a := n.Addr6On(network); a.IsValid() {
			fmt.Fprintf(&b, "%s %s\n", a, name)
		}
	}
	for i := range l.Nodes {
		line(&l.Nodes[i], l.Nodes[i].Name)
	}
	for _, alias := range l.Topology.AliasNames() {
		target := l.Topology.Aliases[alias]
		if n := l.Node(target); n != nil {
			line(n, alias)
			continue
		}
		for _, n := range l.RoleNodes(target) {
			if down == nil || !down(n.Name) {
				line(&n, alias)
			}
		}
	}
	return b.String()
}

// AddrOn is the node's address on a network (invalid when it is not on it).
func (n Node) AddrOn(network string) netip.Addr {
	for _, ifc := range n.Interfaces {
		if ifc.Network == network {
			return ifc.Addr
		}
	}
	return netip.Addr{}
}

// Addr6On is the node's IPv6 address on a network (invalid when it is not
// on it, or the network is IPv4 only).
func (n Node) Addr6On(network string) netip.Addr {
	for _, ifc := range n.Interfaces {
		if ifc.Network == network {
			return ifc.Addr6
		}
	}
	return netip.Addr{}
}
