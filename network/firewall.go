package network

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Policy is what lab enforces on a lab's bridges beyond its drop rules:
// every node sends only as itself (so no node, however many networks it
// joins, routes between them), guarded nodes accept only what their role
// allows, and fault partitions cut traffic between sets of nodes. It lives
// in two tables of its own, replaced whole in one nft transaction:
//
//   - bridge lab_NAME: per node port, frames with another source address
//     are dropped as they enter the bridge (no node can turn this off);
//   - inet lab_NAME.policy: conntrack-based rules on bridged traffic (the
//     lab's bridges pass it to the inet hooks, nf_call_iptables), so replies
//     to connections a node opened always pass.
type Policy struct {
	Lab    string
	Ports  []Port
	Guards []Guard
	Cuts   []Cut
	// Bridges are the lab's bridges: true for those whose bridged traffic
	// must reach the inet hooks (a guarded node or a partition is on it).
	// Only those get nf_call_iptables: it makes the host's own forward
	// rules (Docker's drop policy, say) apply to their traffic too.
	Bridges map[string]bool
}

// Port is a node's host-side interface on a lab bridge, with its
// addresses (Addr6 invalid: the network is IPv4 only).
type Port struct {
	Node   string
	Name   string
	Bridge string
	Addr   netip.Addr
	Addr6  netip.Addr
	// Floating are the addresses (either family) the node may also send
	// from: its role's floating addresses on this network.
	Floating []netip.Addr
}

// Guard is a node that accepts only what Allow says, on its address (and
// IPv6 address) on one network.
type Guard struct {
	Node     string
	Addr     netip.Addr
	Addr6    netip.Addr
	Floating []netip.Addr // guarded like Addr while the node holds them
	Allow    []Allowed
	// Host are the host's addresses on the network, for a guard the node
	// enforces itself (NodePolicy): there the host is a station on the
	// network, so "from the network" would let it in too; only allows
	// from the host do.
	Host []netip.Addr
}

// Allowed is one allow rule: from these addresses (or the host), to these
// ports.
type Allowed struct {
	From []netip.Prefix
	Host bool
	TCP  []string // "5432", "8000-8010"
	UDP  []string
	ICMP bool
}

// Cut is a partition: traffic from From to To is dropped (and back, unless
// OneWay), established connections included.
type Cut struct {
	ID       string
	From, To []netip.Addr
	OneWay   bool
}

// PolicyTable is the inet table of a lab's policy.
func PolicyTable(lab string) string { return Table(lab) + ".policy" }

// Render is the nft script that replaces the lab's policy tables.
func (p Policy) Render() string {
	var b strings.Builder
	bt, it := Table(p.Lab), PolicyTable(p.Lab)
	// Declare, then delete, then make: one transaction, never a moment
	// without the rules.
	fmt.Fprintf(&b, "table bridge %s\ndelete table bridge %s\ntable inet %s\ndelete table inet %s\n", bt, bt, it, it)
	b.WriteString(p.renderPorts())
	b.WriteString(p.renderInet())
	return b.String()
}

func (p Policy) renderPorts() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table bridge %s {\n\tchain ports {\n\t\ttype filter hook prerouting priority -300; policy accept;\n", Table(p.Lab))
	ports := append([]Port(nil), p.Ports...)
	sort.Slice(ports, func(i, j int) bool { return ports[i].Name < ports[j].Name })
	for _, pt := range ports {
		fmt.Fprintf(&b, "\t\tiifname %q ether type ip ip saddr != %s counter drop comment \"lab: %s sends only as itself\"\n", pt.Name, addrOrSet(append([]netip.Addr{pt.Addr}, family(pt.Floating, "ip")...)), pt.Node)
		if !pt.Addr6.IsValid() {
			fmt.Fprintf(&b, "\t\tiifname %q ether type ip6 counter drop comment \"lab: no IPv6 on this network\"\n", pt.Name)
			continue
		}
		// Neighbour discovery from the link-local address (and :: while
		// checking for duplicates) passes; no node routes, so none may
		// advertise itself as a router or redirect.
		fmt.Fprintf(&b, "\t\tiifname %q ether type ip6 icmpv6 type { nd-router-advert, nd-redirect } counter drop comment \"lab: %s is no router\"\n", pt.Name, pt.Node)
		fmt.Fprintf(&b, "\t\tiifname %q ether type ip6 ip6 saddr { ::, fe80::/10 } meta l4proto ipv6-icmp accept\n", pt.Name)
		fmt.Fprintf(&b, "\t\tiifname %q ether type ip6 ip6 saddr != %s counter drop comment \"lab: %s sends only as itself\"\n", pt.Name, addrOrSet(append([]netip.Addr{pt.Addr6}, family(pt.Floating, "ip6")...)), pt.Node)
	}
	b.WriteString("\t}\n}\n")
	return b.String()
}

func (p Policy) renderInet() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n", PolicyTable(p.Lab))
	b.WriteString("\tchain cuts {\n\t\ttype filter hook forward priority filter - 20; policy accept;\n")
	for _, c := range p.Cuts {
		for _, fam := range []string{"ip", "ip6"} {
			from, to := family(c.From, fam), family(c.To, fam)
			if len(from) == 0 || len(to) == 0 {
				continue
			}
			fmt.Fprintf(&b, "\t\t%[1]s saddr %[2]s %[1]s daddr %[3]s counter drop comment \"lab: fault %[4]s\"\n", fam, addrSet(from), addrSet(to), c.ID)
			if !c.OneWay {
				fmt.Fprintf(&b, "\t\t%[1]s saddr %[2]s %[1]s daddr %[3]s counter drop comment \"lab: fault %[4]s\"\n", fam, addrSet(to), addrSet(from), c.ID)
			}
		}
	}
	b.WriteString("\t}\n")
	// Between nodes (bridged) and from the host (output): replies and
	// neighbour discovery pass, then each guarded node's own chain decides.
	for _, hook := range []string{"forward", "output"} {
		fmt.Fprintf(&b, "\tchain %s_guard {\n\t\ttype filter hook %s priority filter; policy accept;\n\t\tct state established,related accept\n", hook, hook)
		b.WriteString("\t\ticmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept\n")
		for _, g := range p.Guards {
			fmt.Fprintf(&b, "\t\tip daddr %s jump %s_%s\n", addrOrSet(append([]netip.Addr{g.Addr}, family(g.Floating, "ip")...)), hook, chainName(g.Node))
			if g.Addr6.IsValid() {
				fmt.Fprintf(&b, "\t\tip6 daddr %s jump %s_%s\n", addrOrSet(append([]netip.Addr{g.Addr6}, family(g.Floating, "ip6")...)), hook, chainName(g.Node))
			}
		}
		b.WriteString("\t}\n")
	}
	for _, g := range p.Guards {
		b.WriteString(g.render("forward", false))
		b.WriteString(g.render("output", true))
	}
	b.WriteString("}\n")
	return b.String()
}

// render is a guarded node's chain: its allow rules, then drop. A guard
// the node enforces itself (Host set) takes the allows from the host
// first (from its addresses), then drops anything else from the host,
// then takes the rest.
func (g Guard) render(hook string, host bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\tchain %s_%s {\n", hook, chainName(g.Node))
	if len(g.Host) == 0 {
		for _, a := range g.Allow {
			writeAllow(&b, a, host)
		}
	} else {
		for _, a := range g.Allow {
			if a.Host {
				a.Host = false
				for _, ad := range g.Host {
					a.From = append(a.From, netip.PrefixFrom(ad, ad.BitLen()))
				}
				writeAllow(&b, a, false)
			}
		}
		for _, fam := range []string{"ip", "ip6"} {
			if as := family(g.Host, fam); len(as) > 0 {
				fmt.Fprintf(&b, "\t\t%s saddr %s counter drop comment \"lab: the host reaches %s only as its firewall allows\"\n", fam, addrSet(as), g.Node)
			}
		}
		for _, a := range g.Allow {
			if !a.Host {
				writeAllow(&b, a, false)
			}
		}
	}
	fmt.Fprintf(&b, "\t\tcounter drop comment \"lab: %s accepts only what its firewall allows\"\n\t}\n", g.Node)
	return b.String()
}

// writeAllow writes one allow rule's accepts: in the host's output chain
// (host) only those from the host, else those from its addresses.
func writeAllow(b *strings.Builder, a Allowed, host bool) {
	var froms []string // "" when the host: output sends only the host's own packets
	switch {
	case host && !a.Host:
		return
	case host:
		froms = []string{""}
	default:
		for _, fam := range []string{"ip", "ip6"} {
			if ps := prefixFamily(a.From, fam); len(ps) > 0 {
				froms = append(froms, fam+" saddr "+prefixSet(ps)+" ")
			}
		}
	}
	for _, from := range froms {
		if len(a.TCP) > 0 {
			fmt.Fprintf(b, "\t\t%stcp dport { %s } accept\n", from, strings.Join(a.TCP, ", "))
		}
		if len(a.UDP) > 0 {
			fmt.Fprintf(b, "\t\t%sudp dport { %s } accept\n", from, strings.Join(a.UDP, ", "))
		}
		if a.ICMP {
			if from == "" || strings.HasPrefix(from, "ip ") {
				fmt.Fprintf(b, "\t\t%sicmp type echo-request accept\n", from)
			}
			if from == "" || strings.HasPrefix(from, "ip6 ") {
				fmt.Fprintf(b, "\t\t%sicmpv6 type echo-request accept\n", from)
			}
		}
	}
}

// family keeps the addresses of one family ("ip" or "ip6").
func family(as []netip.Addr, fam string) []netip.Addr {
	var out []netip.Addr
	for _, a := range as {
		if a.Is4() == (fam == "ip") {
			out = append(out, a)
		}
	}
	return out
}

func prefixFamily(ps []netip.Prefix, fam string) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range ps {
		if p.Addr().Is4() == (fam == "ip") {
			out = append(out, p)
		}
	}
	return out
}

func chainName(node string) string { return strings.ReplaceAll(node, "-", "_") }

func addrSet(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return "{ " + strings.Join(s, ", ") + " }"
}

// addrOrSet is one address as itself, more as a set.
func addrOrSet(as []netip.Addr) string {
	if len(as) == 1 {
		return as[0].String()
	}
	return addrSet(as)
}

func prefixSet(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		if p.IsSingleIP() {
			s[i] = p.Addr().String()
		} else {
			s[i] = p.String()
		}
	}
	return "{ " + strings.Join(s, ", ") + " }"
}

// ApplyPolicy puts the lab's policy in force: the bridges that need it hand
// bridged IPv4 and IPv6 to the inet hooks (nf_call_iptables and
// nf_call_ip6tables, per bridge: no other bridge of the machine changes),
// then the tables are replaced in one transaction.
func ApplyPolicy(ctx context.Context, p Policy) error {
	for br, on := range p.Bridges {
		v := "0"
		if on {
			v = "1"
		}
		for _, k := range []string{"nf_call_iptables", "nf_call_ip6tables"} {
			f := filepath.Join("/sys/class/net", br, "bridge", k)
			if err := os.WriteFile(f, []byte(v), 0o644); err != nil && on {
				return fmt.Errorf("bridge %s: pass bridged traffic to nftables: %w", br, err)
			}
		}
	}
	return nftScript(ctx, p.Render())
}

// ApplyPolicy is the package's ApplyPolicy, for callers that hold a Manager.
func (m *Manager) ApplyPolicy(ctx context.Context, p Policy) error { return ApplyPolicy(ctx, p) }

// RemoveLab is the package's RemoveLab, for callers that hold a Manager.
func (m *Manager) RemoveLab(ctx context.Context, lab string) error { return RemoveLab(ctx, lab) }
