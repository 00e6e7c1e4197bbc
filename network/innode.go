package network

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// NodeTable is the nft table a node on a network lab does not make (an
// LXD cluster's, whose bridges are on other machines) holds in its own
// network namespace: lab's rules for it there, since no bridge of this
// host sees its traffic.
const NodeTable = "lab"

// NodePolicy is the nft script that puts a node's own rules in force:
// the partitions in force that cut it (established connections included:
// before anything is accepted), then its guards, one per network, as the
// host's policy guards a node on a lab bridge. self are the node's
// addresses. Loading it replaces what an earlier one loaded, at once.
func NodePolicy(guards []Guard, cuts []Cut, self []netip.Addr) string {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %[1]s {}\ndelete table inet %[1]s\ntable inet %[1]s {\n", NodeTable)
	b.WriteString("\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n")
	mine := func(as []netip.Addr) bool {
		return slices.ContainsFunc(as, func(a netip.Addr) bool { return slices.Contains(self, a) })
	}
	for _, c := range cuts {
		var from []netip.Addr
		if mine(c.To) {
			from = append(from, c.From...)
		}
		if !c.OneWay && mine(c.From) {
			from = append(from, c.To...)
		}
		for _, fam := range []string{"ip", "ip6"} {
			if fs := family(from, fam); len(fs) > 0 {
				fmt.Fprintf(&b, "\t\t%s saddr %s counter drop comment \"lab: fault %s\"\n", fam, addrSet(fs), c.ID)
			}
		}
	}
	b.WriteString("\t\tct state established,related accept\n\t\tiif \"lo\" accept\n")
	if len(guards) > 0 {
		b.WriteString("\t\ticmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept\n")
	}
	for i, g := range guards {
		hook := fmt.Sprintf("g%d", i)
		fmt.Fprintf(&b, "\t\tip daddr %s jump %s_%s\n", addrOrSet(append([]netip.Addr{g.Addr}, family(g.Floating, "ip")...)), hook, chainName(g.Node))
		if g.Addr6.IsValid() {
			fmt.Fprintf(&b, "\t\tip6 daddr %s jump %s_%s\n", addrOrSet(append([]netip.Addr{g.Addr6}, family(g.Floating, "ip6")...)), hook, chainName(g.Node))
		}
	}
	b.WriteString("\t}\n")
	for i, g := range guards {
		b.WriteString(g.render(fmt.Sprintf("g%d", i), false))
	}
	b.WriteString("}\n")
	return b.String()
}
