package network

import (
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// A node's own rules: the cuts that concern it first (drop, before
// established connections pass), then its guards, one chain per network;
// nft itself accepts the script.
func TestNodePolicy(t *testing.T) {
	a := netip.MustParseAddr
	self := []netip.Addr{a("10.1.0.51"), a("fd00:1::51")}
	guards := []Guard{{Node: "pg1", Addr: a("10.1.0.51"), Addr6: a("fd00:1::51"), Floating: []netip.Addr{a("10.1.0.5")}, Allow: []Allowed{
		{From: []netip.Prefix{netip.MustParsePrefix("10.1.0.31/32"), netip.MustParsePrefix("fd00:1::31/128")}, TCP: []string{"5432"}},
		{From: []netip.Prefix{netip.MustParsePrefix("10.1.0.1/32")}, TCP: []string{"22"}, ICMP: true},
	}}}
	cuts := []Cut{
		{ID: "f1", From: []netip.Addr{a("10.1.0.11"), a("fd00:1::11")}, To: []netip.Addr{a("10.1.0.51"), a("fd00:1::51")}},
		{ID: "f2", From: []netip.Addr{a("10.1.0.51")}, To: []netip.Addr{a("10.1.0.12")}, OneWay: true},
		{ID: "f3", From: []netip.Addr{a("10.1.0.13")}, To: []netip.Addr{a("10.1.0.14")}},
	}
	s := NodePolicy(guards, cuts, self)
	for _, want := range []string{
		"table inet lab {}\ndelete table inet lab\ntable inet lab {\n\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n" +
			"\t\tip saddr { 10.1.0.11 } counter drop comment \"lab: fault f1\"\n\t\tip6 saddr { fd00:1::11 } counter drop comment \"lab: fault f1\"\n" +
			"\t\tct state established,related accept\n",
		"\t\tip daddr { 10.1.0.51, 10.1.0.5 } jump g0_pg1\n\t\tip6 daddr fd00:1::51 jump g0_pg1\n",
		"chain g0_pg1 {\n\t\tip saddr { 10.1.0.31 } tcp dport { 5432 } accept\n\t\tip6 saddr { fd00:1::31 } tcp dport { 5432 } accept\n",
		"ip saddr { 10.1.0.1 } icmp type echo-request accept\n\t\tcounter drop",
	} {
		assert.Contains(t, s, want)
	}
	assert.NotContains(t, s, "fault f2", "a one-way cut from this node is the other side's to drop")
	assert.NotContains(t, s, "fault f3", "a cut between others")

	open := NodePolicy(nil, nil, self)
	assert.NotContains(t, open, "drop", "no guard, no cut: everything passes")
	if _, err := exec.LookPath("nft"); err == nil && os.Geteuid() == 0 {
		for _, script := range []string{s, open} {
			cmd := exec.Command("nft", "-c", "-f", "-")
			cmd.Stdin = strings.NewReader(script)
			out, err := cmd.CombinedOutput()
			assert.NoError(t, err, "%s", out)
		}
	}
}
