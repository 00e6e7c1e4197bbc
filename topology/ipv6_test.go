package topology

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every network is dual stack unless it says ipv6: false: a ULA /64 fixed
// from the lab and network names (or subnet6), the bridge at ::1, and each
// node at its IPv4 host number written in the same digits.
func TestIPv6Addresses(t *testing.T) {
	top := loadString(t, `name: six
networks:
  - {name: lan, subnet: 10.1.0.0/24}
  - {name: given, subnet: 10.2.0.0/24, subnet6: "fd12:3456:789a:1::/64"}
  - {name: old, subnet: 10.3.0.0/24, ipv6: false}
nodes:
  - {role: web, count: 2, networks: [lan, given, old]}
`)
	lab, err := Expand(top, nil)
	require.NoError(t, err)
	auto := lab.Network("lan").Subnet6
	assert.Equal(t, AutoSubnet6("six", "lan"), auto)
	assert.Equal(t, 64, auto.Bits())
	assert.True(t, netip.MustParsePrefix("fd00::/8").Contains(auto.Addr()), auto)
	assert.NotEqual(t, AutoSubnet6("six", "lan"), AutoSubnet6("six", "lan2"))
	assert.NotEqual(t, AutoSubnet6("six", "lan"), AutoSubnet6("sixx", "lan"))
	assert.Equal(t, "fd12:3456:789a:1::1", lab.Network("given").Gateway6.String())
	assert.False(t, lab.Network("old").Subnet6.IsValid())

	web2 := lab.Node("web2")
	assert.Equal(t, "10.2.0.12", web2.AddrOn("given").String())
	assert.Equal(t, "fd12:3456:789a:1::12", web2.Addr6On("given").String())
	assert.Equal(t, auto.Addr().String()+"12", web2.IP6().String())
	assert.False(t, web2.Addr6On("old").IsValid())
	assert.Equal(t, "fd00::254", HostAddr6(netip.MustParsePrefix("fd00::/64"), 254).String())
	assert.Equal(t, "fd00::6:5534", HostAddr6(netip.MustParsePrefix("fd00::/64"), 65534).String())

	// A role's sources are both families; /etc/hosts keeps IPv4 (software
	// that takes the first address stays on it), DNS has both.
	src, _ := lab.Sources("web", "given")
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.2.0.11/32"), netip.MustParsePrefix("fd12:3456:789a:1::11/128"),
		netip.MustParsePrefix("10.2.0.12/32"), netip.MustParsePrefix("fd12:3456:789a:1::12/128")}, src)
	net, _ := lab.Sources("given", "given")
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.2.0.0/24"), netip.MustParsePrefix("fd12:3456:789a:1::/64")}, net)
	assert.NotContains(t, lab.Hosts(), "fd12")
	assert.Contains(t, lab.DNSNames("given", nil), "fd12:3456:789a:1::11 web1\n")
}

// A role's floating address, with its IPv6 twin, is one a node of the role
// may send from on that network.
func TestFloating(t *testing.T) {
	top := loadString(t, `name: f
networks: [{name: lan, subnet: 10.1.0.0/24, subnet6: "fd00:1::/64"}]
nodes:
  - {role: web, count: 2, floating: [10.1.0.5]}
  - {role: db}
`)
	lab, err := Expand(top, nil)
	require.NoError(t, err)
	assert.Equal(t, []Floating{{Network: "lan", Addr: netip.MustParseAddr("10.1.0.5"), Addr6: netip.MustParseAddr("fd00:1::5")}}, lab.Floating("web"))
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("10.1.0.5"), netip.MustParseAddr("fd00:1::5")}, lab.FloatingOn(*lab.Node("web2"), "lan"))
	assert.Empty(t, lab.FloatingOn(*lab.Node("db1"), "lan"))
}
