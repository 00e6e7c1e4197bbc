package helper

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/labctl/lab/network"
)

func testNets() LabNets {
	return LabNets{
		Subnets: map[string][]netip.Prefix{"lab-l-0": {netip.MustParsePrefix("10.97.9.0/24"), netip.MustParsePrefix("fd00:9::/64")}},
		Master: func(port string) string {
			return map[string]string{"veth1000_ab": "lab-l-0", "eth0": "", "veth0_other": "lab-other-0"}[port]
		},
	}
}

func goodPolicy() network.Policy {
	a := netip.MustParseAddr
	return network.Policy{
		Lab:     "l",
		Bridges: map[string]bool{"lab-l-0": true},
		Ports:   []network.Port{{Node: "db1", Name: "veth1000_ab", Bridge: "lab-l-0", Addr: a("10.97.9.11"), Addr6: a("fd00:9::11")}},
		Guards: []network.Guard{{Node: "db1", Addr: a("10.97.9.11"), Allow: []network.Allowed{
			{From: []netip.Prefix{netip.MustParsePrefix("10.97.9.0/24")}, TCP: []string{"5432", "8000-8010"}, ICMP: true}}}},
		Cuts: []network.Cut{{ID: "f1", From: []netip.Addr{a("10.97.9.11")}, To: []netip.Addr{a("10.97.9.12")}}},
	}
}

func TestCheckPolicyTakesTheLabsOwn(t *testing.T) {
	p := goodPolicy()
	require.NoError(t, CheckPolicy(&p, "l", testNets()))
}

// What a member of the lab group might slip into a policy to reach the
// host's other traffic, or into the rules' text, is refused.
func TestCheckPolicyRefusesWhatIsNotTheLabs(t *testing.T) {
	a := netip.MustParseAddr
	for name, tc := range map[string]struct {
		change func(p *network.Policy)
		want   string
	}{
		"another lab's policy":      {func(p *network.Policy) { p.Lab = "other" }, `of lab "other"`},
		"a bridge of another":       {func(p *network.Policy) { p.Bridges["docker0"] = true }, `bridge "docker0" is not one of lab l's`},
		"the host's own interface":  {func(p *network.Policy) { p.Ports[0].Name = "eth0" }, `"eth0" is not a port on lab l's bridge`},
		"another lab's port":        {func(p *network.Policy) { p.Ports[0].Name = "veth0_other" }, `"veth0_other" is not a port`},
		"a guard on the host's LAN": {func(p *network.Policy) { p.Guards[0].Addr = a("192.168.1.10") }, "192.168.1.10 is not in the lab's networks"},
		"a floating address elsewhere": {func(p *network.Policy) { p.Guards[0].Floating = []netip.Addr{a("8.8.8.8")} },
			"8.8.8.8 is not in the lab's networks"},
		"a cut of the host's traffic": {func(p *network.Policy) { p.Cuts[0].To = []netip.Addr{a("10.0.0.1")} }, "10.0.0.1 is not in the lab's networks"},
		"a rule in a node's name":     {func(p *network.Policy) { p.Guards[0].Node = `db1" accept; drop "` }, "is not a node's name"},
		"a rule in a port":            {func(p *network.Policy) { p.Guards[0].Allow[0].TCP = []string{"22 } accept"} }, "is not a port or a range"},
		"a rule in a fault's id":      {func(p *network.Policy) { p.Cuts[0].ID = `f1" accept` }, "is not a fault's id"},
		"no address":                  {func(p *network.Policy) { p.Ports[0].Addr = netip.Addr{} }, "an address not in its network"},
	} {
		t.Run(name, func(t *testing.T) {
			p := goodPolicy()
			tc.change(&p)
			err := CheckPolicy(&p, "l", testNets())
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	assert.Error(t, CheckPolicy(nil, "l", testNets()))
}

func TestCheckDelay(t *testing.T) {
	ok := func() *Request {
		return &Request{Op: "delay", Lab: "l", Fault: "f1", Ports: []string{"veth1000_ab"}, From: []netip.Addr{netip.MustParseAddr("10.97.9.12")},
			Delay: &network.Delay{Delay: 100 * time.Millisecond}}
	}
	require.NoError(t, CheckDelay(ok(), testNets()))
	for name, tc := range map[string]struct {
		change func(r *Request)
		want   string
	}{
		"the host's interface":   {func(r *Request) { r.Ports = []string{"eth0"} }, `"eth0" is not a port`},
		"another lab's port":     {func(r *Request) { r.Ports = []string{"veth0_other"} }, `"veth0_other" is not a port`},
		"a source elsewhere":     {func(r *Request) { r.From = []netip.Addr{netip.MustParseAddr("192.168.1.1")} }, "not in the lab's networks"},
		"a rule in a fault's id": {func(r *Request) { r.Fault = `f1 accept` }, "is not a fault's id"},
		"no ports":               {func(r *Request) { r.Ports = nil }, "0 ports"},
		"an hour":                {func(r *Request) { r.Delay.Delay = time.Hour }, "want 0 to 1m0s"},
		"more than all":          {func(r *Request) { r.Delay.Loss = 2 }, "loss is a share"},
		"no delay":               {func(r *Request) { r.Delay = nil }, "delay: missing"},
	} {
		t.Run(name, func(t *testing.T) {
			r := ok()
			tc.change(r)
			err := CheckDelay(r, testNets())
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}
