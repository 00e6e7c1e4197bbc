package network

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
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

// Port is a node's host-side interface on a lab bridge, with its address.
type Port struct {
	Node   string
	Name   string
	Bridge string
	Addr   netip.Addr
}

// Guard is a node that accepts only what Allow says.
type Guard struct {
	Node  string
	Addr  netip.Addr
	Allow []Allowed
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
		fmt.Fprintf(&b, "\t\tiifname %q ether type ip ip saddr != %s counter drop comment \"lab: %s sends only as itself\"\n", pt.Name, pt.Addr, pt.Node)
		fmt.Fprintf(&b, "\t\tiifname %q ether type ip6 counter drop comment \"lab: no IPv6 on lab networks\"\n", pt.Name)
	}
	b.WriteString("\t}\n}\n")
	return b.String()
}

func (p Policy) renderInet() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n", PolicyTable(p.Lab))
	b.WriteString("\tchain cuts {\n\t\ttype filter hook forward priority filter - 20; policy accept;\n")
	for _, c := range p.Cuts {
		fmt.Fprintf(&b, "\t\tip saddr %s ip daddr %s counter drop comment \"lab: fault %s\"\n", addrSet(c.From), addrSet(c.To), c.ID)
		if !c.OneWay {
			fmt.Fprintf(&b, "\t\tip saddr %s ip daddr %s counter drop comment \"lab: fault %s\"\n", addrSet(c.To), addrSet(c.From), c.ID)
		}
	}
	b.WriteString("\t}\n")
	// Between nodes (bridged) and from the host (output): replies pass,
	// then each guarded node's own chain decides.
	for _, hook := range []string{"forward", "output"} {
		fmt.Fprintf(&b, "\tchain %s_guard {\n\t\ttype filter hook %s priority filter; policy accept;\n\t\tct state established,related accept\n", hook, hook)
		for _, g := range p.Guards {
			fmt.Fprintf(&b, "\t\tip daddr %s jump %s_%s\n", g.Addr, hook, chainName(g.Node))
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

// render is a guarded node's chain: its allow rules, then drop.
func (g Guard) render(hook string, host bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\tchain %s_%s {\n", hook, chainName(g.Node))
	for _, a := range g.Allow {
		from := ""
		switch {
		case host && !a.Host:
			continue
		case !host && len(a.From) == 0:
			continue
		case !host:
			from = "ip saddr " + prefixSet(a.From) + " "
		}
		if len(a.TCP) > 0 {
			fmt.Fprintf(&b, "\t\t%stcp dport { %s } accept\n", from, strings.Join(a.TCP, ", "))
		}
		if len(a.UDP) > 0 {
			fmt.Fprintf(&b, "\t\t%sudp dport { %s } accept\n", from, strings.Join(a.UDP, ", "))
		}
		if a.ICMP {
			fmt.Fprintf(&b, "\t\t%sicmp type echo-request accept\n", from)
		}
	}
	fmt.Fprintf(&b, "\t\tcounter drop comment \"lab: %s accepts only what its firewall allows\"\n\t}\n", g.Node)
	return b.String()
}

func chainName(node string) string { return strings.ReplaceAll(node, "-", "_") }

func addrSet(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return "{ " + strings.Join(s, ", ") + " }"
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
// bridged IPv4 to the inet hooks (nf_call_iptables, per bridge: no other
// bridge of the machine changes), then the tables are replaced in one
// transaction.
func ApplyPolicy(ctx context.Context, p Policy) error {
	for br, on := range p.Bridges {
		f := filepath.Join("/sys/class/net", br, "bridge", "nf_call_iptables")
		v := "0"
		if on {
			v = "1"
		}
		if err := os.WriteFile(f, []byte(v), 0o644); err != nil && on {
			return fmt.Errorf("bridge %s: pass bridged traffic to nftables: %w", br, err)
		}
	}
	cmd := exec.CommandContext(ctx, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(p.Render())
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nftables: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// RemovePolicy deletes the lab's policy tables, if they are there.
func RemovePolicy(ctx context.Context, lab string) error {
	var errs []string
	for _, t := range []string{"bridge " + Table(lab), "inet " + PolicyTable(lab)} {
		fam, name, _ := strings.Cut(t, " ")
		if _, err := run(ctx, "nft", "list", "table", fam, name); err != nil {
			continue
		}
		if _, err := run(ctx, "nft", "delete", "table", fam, name); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// ApplyPolicy is the package's ApplyPolicy, for callers that hold a Manager.
func (m *Manager) ApplyPolicy(ctx context.Context, p Policy) error { return ApplyPolicy(ctx, p) }

// RemovePolicy is the package's RemovePolicy, for callers that hold a Manager.
func (m *Manager) RemovePolicy(ctx context.Context, lab string) error { return RemovePolicy(ctx, lab) }

// RemoveDelays is the package's RemoveDelays, for callers that hold a Manager.
func (m *Manager) RemoveDelays(ctx context.Context, lab string) error { return RemoveDelays(ctx, lab) }
