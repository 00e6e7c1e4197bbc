package network

import (
	"net/netip"
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
		"chain forward_guard {\n\t\ttype filter hook forward priority filter; policy accept;\n\t\tct state established,related accept\n\t\tip daddr 10.1.0.51 jump forward_pg1",
		"chain forward_pg1 {\n\t\tip saddr { 10.1.0.31, 10.2.0.0/24 } tcp dport { 5432, 8000-8010 } accept\n\t\tcounter drop",
		"chain output_pg1 {\n\t\ttcp dport { 5432 } accept\n\t\ticmp type echo-request accept\n\t\tcounter drop",
	} {
		assert.Contains(t, s, want)
	}
	assert.NotContains(t, s, "ip saddr { 10.1.0.12 } ip daddr { 10.1.0.11 }", "a one-way cut drops one way")
}

func TestDelayNames(t *testing.T) {
	assert.Equal(t, "d1a2b3c4d-0", TapName("v1a2b3c4d-0"))
	assert.Equal(t, "f3_v1a2b3c4d_0", delayChain("f3", "v1a2b3c4d-0"))
	assert.Equal(t, "lab_a_b.delay", DelayTable("a-b"))
}
