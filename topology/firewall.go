package topology

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Rule is one firewall rule of a role: today only allow. A role with
// `firewall:` accepts only what its rules allow (and replies to connections
// its nodes opened); a role without it accepts everything.
type Rule struct {
	Allow *Allow `yaml:"allow"`
}

// Allow lets traffic from some sources reach a role's nodes.
type Allow struct {
	// From names roles, nodes, networks, or host (the machine running lab).
	From []string    `yaml:"from"`
	TCP  []PortRange `yaml:"tcp"`
	UDP  []PortRange `yaml:"udp"`
	ICMP bool        `yaml:"icmp"`
}

// PortRange is a port (5432) or a range ("8000-8010").
type PortRange struct{ First, Last int }

// UnmarshalScalar reads 5432 or "8000-8010".
func (p *PortRange) UnmarshalScalar(s string) error {
	a, b, isRange := strings.Cut(strings.TrimSpace(s), "-")
	first, err1 := strconv.Atoi(strings.TrimSpace(a))
	last, err2 := first, error(nil)
	if isRange {
		last, err2 = strconv.Atoi(strings.TrimSpace(b))
	}
	if err1 != nil || err2 != nil || first < 1 || last > 65535 || first > last {
		return fmt.Errorf("%q: want a port from 1 to 65535 or a range such as \"8000-8010\"", Cut(s))
	}
	*p = PortRange{first, last}
	return nil
}

func (p PortRange) String() string {
	if p.First == p.Last {
		return strconv.Itoa(p.First)
	}
	return fmt.Sprintf("%d-%d", p.First, p.Last)
}

// HostSource is the name in `from` for the machine running lab.
const HostSource = "host"

// HasFirewall tells whether the role's nodes accept only what it allows.
func (r *Role) HasFirewall() bool { return r.Firewall != nil }

// validateFirewall checks a role's rules: sources that exist, ports, and a
// role that has nodes to protect.
func (t *Topology) validateFirewall(at reporter, path string, r *Role) {
	if !r.HasFirewall() {
		return
	}
	if r.CountOf() == 0 {
		at(path, "role %s has no nodes (count: 0) for its firewall to protect", r.Role)
	}
	for i, rule := range r.Firewall {
		rp := fmt.Sprintf("%s[%d]", path, i)
		if rule.Allow == nil {
			at(rp, "want allow: {from: [...], tcp: [...], udp: [...], icmp: true}")
			continue
		}
		a := rule.Allow
		if len(a.From) == 0 {
			at(rp+".allow.from", "required: roles, nodes, networks or host the traffic may come from")
		}
		for j, f := range a.From {
			if why := t.sourceProblem(f); why != "" {
				at(fmt.Sprintf("%s.allow.from[%d]", rp, j), "%s", why)
			}
		}
		if len(a.TCP) == 0 && len(a.UDP) == 0 && !a.ICMP {
			at(rp+".allow", "allows nothing: give tcp, udp or icmp: true")
		}
	}
}

// sourceProblem says what is wrong with a name in `from` ("" when nothing).
func (t *Topology) sourceProblem(name string) string {
	if name == HostSource {
		return ""
	}
	role := t.RoleByName(name)
	network := false
	for _, n := range t.Networks {
		network = network || n.Name == name
	}
	switch {
	case role != nil && network:
		return fmt.Sprintf("%q is both a role and a network: rename one", name)
	case role != nil || network:
		return ""
	}
	if t.HasNode(name) {
		return ""
	}
	var known []string
	for _, r := range t.Nodes {
		known = append(known, r.Role)
	}
	for _, n := range t.Networks {
		known = append(known, n.Name)
	}
	return fmt.Sprintf("unknown role, node or network %q%s", Cut(name), didYouMeanAny(name, append(known, HostSource)))
}

func didYouMeanAny(s string, known []string) string {
	if m := suggest(s, known); m != "" {
		return fmt.Sprintf(" (did you mean %q?)", m)
	}
	return fmt.Sprintf(" (roles, networks, or host: %s)", strings.Join(known, ", "))
}

// Sources resolves a `from` name to the addresses it stands for on one
// network, IPv4 and IPv6: a role's nodes, a node, the network's whole subnet (when it is
// that network), or the host (host is true).
func (l *Lab) Sources(name, network string) (addrs []netip.Prefix, host bool) {
	if name == HostSource {
		return nil, true
	}
	nodes := l.RoleNodes(name)
	if len(nodes) == 0 {
		if n := l.Node(name); n != nil {
			nodes = []Node{*n}
		}
	}
	for _, n := range nodes {
		for _, ifc := range n.Interfaces {
			if ifc.Network == network {
				addrs = append(addrs, netip.PrefixFrom(ifc.Addr, 32))
				if ifc.Addr6.IsValid() {
					addrs = append(addrs, netip.PrefixFrom(ifc.Addr6, 128))
				}
			}
		}
	}
	if len(nodes) == 0 && name == network {
		if net := l.Network(network); net != nil {
			addrs = append(addrs, net.Subnet)
			if net.Subnet6.IsValid() {
				addrs = append(addrs, net.Subnet6)
			}
		}
	}
	return addrs, false
}

// FirewallLines says, for people and for plan, what each guarded node
// accepts, with sources resolved to today's nodes: scaling a source role
// changes the lines of the nodes it may reach.
func (l *Lab) FirewallLines() map[string][]string {
	out := map[string][]string{}
	for _, n := range l.Nodes {
		if !n.Spec.HasFirewall() {
			continue
		}
		lines := []string{}
		for _, rule := range n.Spec.Firewall {
			a := rule.Allow
			var from []string
			for _, f := range a.From {
				switch {
				case f == HostSource:
					from = append(from, HostSource)
				case len(l.RoleNodes(f)) > 0:
					for _, m := range l.RoleNodes(f) {
						from = append(from, m.Name)
					}
				case l.RoleByName(f) != nil:
					// a role scaled to 0 allows no one
				default:
					from = append(from, f)
				}
			}
			lines = append(lines, fmt.Sprintf("from %s: %s", strings.Join(from, " "), a.Traffic()))
		}
		out[n.Name] = lines
	}
	return out
}

// Traffic says what the rule lets in: "tcp 5432, icmp".
func (a *Allow) Traffic() string {
	var parts []string
	join := func(ps []PortRange) string {
		s := make([]string, len(ps))
		for i, p := range ps {
			s[i] = p.String()
		}
		return strings.Join(s, ",")
	}
	if len(a.TCP) > 0 {
		parts = append(parts, "tcp "+join(a.TCP))
	}
	if len(a.UDP) > 0 {
		parts = append(parts, "udp "+join(a.UDP))
	}
	if a.ICMP {
		parts = append(parts, "icmp")
	}
	return strings.Join(parts, ", ")
}

// RoleByName returns the role with that name, or nil.
func (l *Lab) RoleByName(name string) *Role { return l.Topology.RoleByName(name) }
