package main

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/labctl/lab/labtest"
)

const sixLab = `
name: it-six
networks:
  - {name: lan, subnet: 10.97.41.0/24, domain: six.lab}
  - {name: old, subnet: 10.97.42.0/24, ipv6: false}
defaults: {memory: 256M}
nodes:
  - role: n
    count: 2
    networks: [lan, old]
    provision: [{shell: listen.sh, env: {PORT: "7000"}}]
  - role: g
    provision: [{shell: listen.sh, env: {PORT: "7000"}}]
    firewall:
      - allow: {from: [n, host], tcp: [7000], icmp: true}
  - role: o
aliases: {web: n2}
`

// connect6 tries a TCP connection to an IPv6 address from a node.
func connect6(l *labtest.Lab, from, addr, port string) (string, int) {
	return l.Exec(from, "timeout", "3", "bash", "-c", "exec 3<>/dev/tcp/"+addr+"/"+port+" && head -c 64 <&3")
}

// Dual stack: every network has an IPv6 /64 unless it says ipv6: false;
// nodes talk over it, DNS answers AAAA, the host reaches nodes, and the
// firewall, the one-address-per-port rule and faults cover IPv6 as IPv4.
func TestIntegrationIPv6(t *testing.T) {
	labtest.Integration(t)
	l := labtest.New(t, "it-six", map[string]string{"lab.yaml": sixLab, "listen.sh": listenSh})
	l.MustRun("up")
	st := l.Status()
	for _, n := range []string{"n1", "n2", "g1", "o1"} {
		require.Len(t, st[n].Addresses6, 1, "%s: one dual-stack network", n)
	}
	n1, n2, g1 := st["n1"].Addresses6[0], st["n2"].Addresses6[0], st["g1"].Addresses6[0]
	assert.True(t, strings.HasPrefix(n1, "fd") && strings.HasSuffix(n1, "::11"), n1)

	// Addresses are unique by construction: no duplicate address detection
	// holds them tentative after boot.
	out, _ := l.Exec("n1", "cat", "/proc/sys/net/ipv6/conf/eth0/accept_dad", "/proc/sys/net/ipv6/conf/all/accept_dad")
	assert.Equal(t, "0\n0", strings.TrimSpace(out), "DAD is off in nodes")

	// The ipv6: false network has no IPv6 address on it, and drops IPv6.
	out, _ = l.Exec("n1", "ip", "-6", "-o", "addr", "show", "dev", "eth1", "scope", "global")
	assert.Empty(t, strings.TrimSpace(out))

	// Nodes talk over IPv6; names resolve to AAAA from the lab's DNS.
	out, code := connect6(l, "n1", n2, "7000")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "n2")
	out, code = l.Exec("n1", "getent", "-s", "dns", "ahostsv6", "n2.six.lab")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, n2+" ")
	// An alias (DNS only) has both; getaddrinfo gives IPv4 first, so what
	// takes the first address stays on IPv4.
	out, code = l.Exec("n1", "getent", "ahosts", "web")
	require.Equal(t, 0, code, out)
	assert.True(t, strings.HasPrefix(out, "10.97.41.12 "), out)
	assert.Contains(t, out, n2+" ")

	// The host reaches a node over IPv6 (from its address on the bridge).
	c, err := net.DialTimeout("tcp6", "["+n1+"]:7000", 3*time.Second)
	require.NoError(t, err)
	b := make([]byte, 16)
	k, _ := c.Read(b)
	c.Close()
	assert.Equal(t, "n1\n", string(b[:k]))

	// The firewall guards g1's IPv6 address as its IPv4 one.
	out, code = connect6(l, "n1", g1, "7000")
	assert.Equal(t, 0, code, "n may reach g1:7000 over IPv6: %s", out)
	_, code = connect6(l, "o1", g1, "7000")
	assert.NotEqual(t, 0, code, "o1 must not reach g1:7000 over IPv6")
	_, code = l.Exec("o1", "ping", "-6", "-c1", "-W2", g1)
	assert.NotEqual(t, 0, code, "o1 may not ping g1")
	_, code = l.Exec("n1", "ping", "-6", "-c1", "-W2", g1)
	assert.Equal(t, 0, code, "n1 may ping g1 over IPv6")
	c, err = net.DialTimeout("tcp6", "["+g1+"]:7000", 3*time.Second)
	require.NoError(t, err, "the host may reach g1:7000 over IPv6")
	c.Close()

	// A node sends only as itself over IPv6 too.
	fake := strings.TrimSuffix(n1, "11") + "99"
	_, code = l.Exec("n1", "sh", "-c", "ip -6 addr add "+fake+"/64 dev eth0 nodad && ip -6 route replace "+n2+"/128 dev eth0 src "+fake)
	require.Equal(t, 0, code)
	_, code = connect6(l, "n1", n2, "7000")
	assert.NotEqual(t, 0, code, "a packet from an address that is not n1's is dropped")
	_, code = l.Exec("n1", "sh", "-c", "ip -6 route del "+n2+"/128 && ip -6 addr del "+fake+"/64 dev eth0")
	require.Equal(t, 0, code)
	_, code = connect6(l, "n1", n2, "7000")
	assert.Equal(t, 0, code)

	// Faults cut and slow IPv6 as IPv4.
	id := faultID(t, l, "partition", "n1", "n2")
	_, code = connect6(l, "n1", n2, "7000")
	assert.NotEqual(t, 0, code, "partitioned over IPv6")
	_, code = connect(l, "n1", "10.97.41.12:7000")
	assert.NotEqual(t, 0, code, "and over IPv4")
	l.MustRun("fault", "heal", id)
	_, code = connect6(l, "n1", n2, "7000")
	assert.Equal(t, 0, code, "healed")
	id = faultID(t, l, "delay", "n2", "200ms")
	for _, ms := range rtts(t, l, "n1", n2) {
		assert.GreaterOrEqual(t, ms, 200.0)
	}
	l.MustRun("fault", "heal", id)

	l.MustRun("destroy")
	labtest.AssertNoLeaks(t, "it-six", l.Dir)
}
