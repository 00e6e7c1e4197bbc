package network

import (
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestPolicyRender(t *testing.T) {
	a := netip.MustParseAddr
	p := Policy{
		Lab:   "web-x",
		Ports: []Port{{Node: "pg1", Name: "v1-0", Bridge: "lab-web-x-0", Addr: a("10.1.0.51")}},
		Guards: []Guard{{Node: "pg1", Addr: a("10.1.0.51"), Allow: []Allowed{
			{From: []netip.Prefix{netip.MustParsePrefix("10.1.0.31/32"), netip.MustParsePrefix("10.2.0.0/24")}, TCP: []string{"5432", "8000-8010"}},
			{Host: true, TCP: []string{"5432"}, ICMP: true},
		}}},
		Cuts: []Cut{{ID: "f1", From: []netip.Addr{a("10.1.0.11")}, To: []netip.Addr{a("10.1.0.12")}, OneWay: true}},
	}
	s := p.Render()
	for _, want := range []string{
		"table bridge lab_web_x\ndelete table bridge lab_web_x\ntable inet lab_web_x.policy\ndelete table inet lab_web_x.policy\n",
		`iifname "v1-0" ether type ip ip saddr != 10.1.0.51 counter drop`,
		"ip saddr { 10.1.0.11 } ip daddr { 10.1.0.12 } counter drop comment \"lab: fault f1\"",
		`iifname "v1-0" ether type ip6 counter drop comment "lab: no IPv6 on this network"`,
		"chain forward_guard {\n\t\ttype filter hook forward priority filter; policy accept;\n\t\tct state established,related accept\n" +
			"\t\ticmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept\n\t\tip daddr 10.1.0.51 jump forward_pg1",
		"chain forward_pg1 {\n\t\tip saddr { 10.1.0.31, 10.2.0.0/24 } tcp dport { 5432, 8000-8010 } accept\n\t\tcounter drop",
		"chain output_pg1 {\n\t\ttcp dport { 5432 } accept\n\t\ticmp type echo-request accept\n\t\ticmpv6 type echo-request accept\n\t\tcounter drop",
	} {
		assert.Contains(t, s, want)
	}
	assert.NotContains(t, s, "ip saddr { 10.1.0.12 } ip daddr { 10.1.0.11 }", "a one-way cut drops one way")
}

// On a dual-stack network every rule has its IPv6 twin: the port sends
// only as the node's two addresses (link-local only for neighbour
// discovery, no router advertisements), guards match both, cuts cut both.
func TestPolicyRenderIPv6(t *testing.T) {
	a, pf := netip.MustParseAddr, netip.MustParsePrefix
	p := Policy{
		Lab:   "six",
		Ports: []Port{{Node: "pg1", Name: "v1-0", Bridge: "lab-six-0", Addr: a("10.1.0.51"), Addr6: a("fd00:1::51")}},
		Guards: []Guard{{Node: "pg1", Addr: a("10.1.0.51"), Addr6: a("fd00:1::51"), Allow: []Allowed{
			{From: []netip.Prefix{pf("10.1.0.31/32"), pf("fd00:1::31/128")}, TCP: []string{"5432"}, ICMP: true},
		}}},
		Cuts: []Cut{{ID: "f1", From: []netip.Addr{a("10.1.0.11"), a("fd00:1::11")}, To: []netip.Addr{a("10.1.0.12"), a("fd00:1::12")}}},
	}
	s := p.Render()
	for _, want := range []string{
		`iifname "v1-0" ether type ip6 icmpv6 type { nd-router-advert, nd-redirect } counter drop`,
		`iifname "v1-0" ether type ip6 ip6 saddr { ::, fe80::/10 } meta l4proto ipv6-icmp accept`,
		`iifname "v1-0" ether type ip6 ip6 saddr != fd00:1::51 counter drop`,
		"ip daddr 10.1.0.51 jump forward_pg1\n\t\tip6 daddr fd00:1::51 jump forward_pg1\n",
		"ip saddr { 10.1.0.31 } tcp dport { 5432 } accept\n\t\tip saddr { 10.1.0.31 } icmp type echo-request accept\n" +
			"\t\tip6 saddr { fd00:1::31 } tcp dport { 5432 } accept\n\t\tip6 saddr { fd00:1::31 } icmpv6 type echo-request accept\n",
		"ip saddr { 10.1.0.11 } ip daddr { 10.1.0.12 } counter drop",
		"ip6 saddr { fd00:1::11 } ip6 daddr { fd00:1::12 } counter drop",
		"ip6 saddr { fd00:1::12 } ip6 daddr { fd00:1::11 } counter drop",
	} {
		assert.Contains(t, s, want)
	}
	assert.NotContains(t, s, "ip saddr { 10.1.0.11 } ip6", "families never mix in a rule")

	// A floating address: the port may send from it, the guard covers it.
	p.Ports[0].Floating = []netip.Addr{a("10.1.0.5"), a("fd00:1::5")}
	p.Guards[0].Floating = p.Ports[0].Floating
	s = p.Render()
	assert.Contains(t, s, `iifname "v1-0" ether type ip ip saddr != { 10.1.0.51, 10.1.0.5 } counter drop`)
	assert.Contains(t, s, `iifname "v1-0" ether type ip6 ip6 saddr != { fd00:1::51, fd00:1::5 } counter drop`)
	assert.Contains(t, s, "ip daddr { 10.1.0.51, 10.1.0.5 } jump forward_pg1\n\t\tip6 daddr { fd00:1::51, fd00:1::5 } jump forward_pg1\n")
	assert.NotContains(t, s, "no IPv6 on this network")
	// nft itself accepts it (a check: nothing is changed).
	if _, err := exec.LookPath("nft"); err == nil && os.Geteuid() == 0 {
		cmd := exec.Command("nft", "-c", "-f", "-")
		cmd.Stdin = strings.NewReader(s)
		out, err := cmd.CombinedOutput()
		assert.NoError(t, err, "%s", out)
	}
}

func TestDelayNames(t *testing.T) {
	assert.Equal(t, "d1a2b3c4d-0", TapName("v1a2b3c4d-0"))
	assert.Equal(t, "f3_v1a2b3c4d_0", delayChain("f3", "v1a2b3c4d-0"))
	assert.Equal(t, "lab_a_b.delay", DelayTable("a-b"))
}
