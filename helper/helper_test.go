package helper

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const good = `{"op": "up", "lab": "web", "index": 0, "subnet": "10.97.40.0/24", "subnet6": "fd12:3456:789a:1::/64",
 "domain": "web.lab", "hosts": [{"addr": "10.97.40.11", "names": ["a1", "a1.web.lab"]}, {"addr": "fd12:3456:789a:1::11", "names": ["a1"]}]}`

func TestAGoodRequest(t *testing.T) {
	req, err := Decode(strings.NewReader(good))
	require.NoError(t, err)
	n, err := req.Net()
	require.NoError(t, err)
	assert.Equal(t, "lab-web-0", n.Bridge)
	assert.Equal(t, "10.97.40.1", n.Gateway.String(), "the helper, not the request, says the bridge's address")
	assert.Equal(t, "fd12:3456:789a:1::1", n.Gateway6.String())
	assert.Equal(t, "web.lab", n.Domain)
	assert.Equal(t, "10.97.40.11 a1 a1.web.lab\nfd12:3456:789a:1::11 a1\n", req.HostsFile())
}

// What a member of the lab group might try through the helper: each is
// refused before anything is done, with what is wrong.
func TestEscapesAreRefused(t *testing.T) {
	for _, tc := range []struct{ name, req, want string }{
		// A bridge that is not a lab's: a request cannot name one.
		{"a bridge by name", `{"op": "down", "lab": "web", "bridge": "eth0"}`, `unknown field "bridge"`},
		{"a lab name that is a path", `{"op": "down", "lab": "../eth0"}`, `lab "../eth0": not a lab's name`},
		{"a lab name with a space", `{"op": "down", "lab": "a b"}`, `not a lab's name`},
		{"an upper-case lab", `{"op": "down", "lab": "Web"}`, `not a lab's name`},
		{"a bridge name too long", `{"op": "down", "lab": "averyverylongname"}`, `longer than an interface name may be`},
		{"a negative index", `{"op": "down", "lab": "web", "index": -1}`, `index -1`},
		// A subnet that covers the host's own addresses or the world.
		{"everything", `{"op": "up", "lab": "web", "subnet": "0.0.0.0/0"}`, `want a masked IPv4 subnet, /8 to /30`},
		{"loopback", `{"op": "up", "lab": "web", "subnet": "127.0.0.0/8"}`, `not a private range`},
		{"a public subnet", `{"op": "up", "lab": "web", "subnet": "8.8.8.0/24"}`, `not a private range`},
		{"more than a private range", `{"op": "up", "lab": "web", "subnet": "10.0.0.0/7"}`, `want a masked IPv4 subnet`},
		{"across a private range", `{"op": "up", "lab": "web", "subnet": "172.0.0.0/8"}`, `not a private range`},
		{"unmasked", `{"op": "up", "lab": "web", "subnet": "10.1.2.3/24"}`, `want a masked IPv4 subnet`},
		{"a global IPv6", `{"op": "up", "lab": "web", "subnet": "10.1.2.0/24", "subnet6": "2001:db8::/64"}`, `not a unique local range`},
		{"IPv6 wider than a /64", `{"op": "up", "lab": "web", "subnet": "10.1.2.0/24", "subnet6": "fd00::/8"}`, `want a masked IPv6 /64`},
		// dnsmasq options injected through a name.
		{"an option in the domain", `{"op": "up", "lab": "web", "subnet": "10.1.2.0/24", "domain": "lab\nconf-file=/etc/shadow"}`, `domain "lab\nconf-file=/etc/shadow": not a DNS name`},
		{"an option in a host name", `{"op": "up", "lab": "web", "subnet": "10.1.2.0/24", "hosts": [{"addr": "10.1.2.5", "names": ["a\nconf-dir=/root"]}]}`, `not a DNS name`},
		{"a comma in a host name", `{"op": "hosts", "lab": "web", "hosts": [{"addr": "10.1.2.5", "names": ["a,b"]}]}`, `not a DNS name`},
		{"a host outside the network", `{"op": "up", "lab": "web", "subnet": "10.1.2.0/24", "hosts": [{"addr": "192.168.1.1", "names": ["gw"]}]}`, `not in the network`},
		{"the bridge's address", `{"op": "up", "lab": "web", "subnet": "10.1.2.0/24", "hosts": [{"addr": "10.1.2.1", "names": ["gw"]}]}`, `the bridge's own`},
		{"an address with a zone", `{"op": "hosts", "lab": "web", "hosts": [{"addr": "fe80::1%eth0", "names": ["x"]}]}`, `not an address`},
		// A path outside the user's lab folder: a request has no path.
		{"a hosts file path", `{"op": "hosts", "lab": "web", "hosts_file": "/etc/shadow"}`, `unknown field "hosts_file"`},
		{"a log path", `{"op": "up", "lab": "web", "subnet": "10.1.2.0/24", "log": "/etc/passwd"}`, `unknown field "log"`},
		// Anything else.
		{"another op", `{"op": "exec", "lab": "web"}`, `op "exec": want one of up, hosts, down`},
		{"two requests", `{"op": "down", "lab": "web"} {"op": "down", "lab": "x"}`, `one JSON object only`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := Decode(strings.NewReader(tc.req))
			if err == nil {
				_, err = req.Net()
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	_, err := Decode(strings.NewReader(`{"op": "up", "lab": "` + strings.Repeat("a", MaxRequest) + `"}`))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "more than")
}

// A lab's networks belong to the user that made them through the helper:
// another user, and a lab the helper did not make, are refused.
func TestOwners(t *testing.T) {
	host := map[string]bool{"todomvc": true}
	o := Owners{Dir: filepath.Join(t.TempDir(), "owners"), Exists: func(lab string) bool { return host[lab] }}
	require.NoError(t, o.Check("web", 1001), "nobody's yet")
	require.NoError(t, o.Claim("web", 1001))
	require.NoError(t, o.Claim("web", 1001), "again: still its")
	host["web"] = true
	require.NoError(t, o.Check("web", 1001))
	err := o.Claim("web", 1002)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "lab web: another user's (uid 1001)")
	assert.Error(t, o.Release("web", 1002))
	err = o.Claim("todomvc", 1001)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "lab todomvc: its networks were not made through the helper")
	require.NoError(t, o.Release("web", 1001))
	assert.Equal(t, -1, o.Owner("web"))

	for i := 0; i < MaxLabs; i++ {
		require.NoError(t, o.Claim(fmt.Sprintf("q%d", i), 1003))
	}
	err = o.Claim("qlast", 1003)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the most a user may have")
	require.NoError(t, o.Claim("qlast", 1004), "another user's quota is its own")
	b, err := os.ReadFile(filepath.Join(o.Dir, "qlast.uid"))
	require.NoError(t, err)
	assert.Equal(t, "1004\n", string(b))
}

// A user's line for a bridge is added once and removed alone; the
// administrator's lines stay as they were.
func TestUsernet(t *testing.T) {
	UsernetLock = filepath.Join(t.TempDir(), "lock")
	path := filepath.Join(t.TempDir(), "lxc-usernet")
	require.NoError(t, os.WriteFile(path, []byte("# the admin's\nbob veth lxcbr0 10\n"), 0o644))
	require.NoError(t, AllowNICs(path, "alice", "lab-web-0"))
	require.NoError(t, AllowNICs(path, "alice", "lab-web-0"))
	require.NoError(t, AllowNICs(path, "alice", "lab-web-1"))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "# the admin's\nbob veth lxcbr0 10\nalice veth lab-web-0 1024\nalice veth lab-web-1 1024\n", string(b))
	require.NoError(t, DenyNICs(path, "alice", "lab-web-0"))
	require.NoError(t, DenyNICs(path, "alice", "lab-web-1"))
	b, err = os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "# the admin's\nbob veth lxcbr0 10\n", string(b))

	fresh := filepath.Join(t.TempDir(), "none")
	require.NoError(t, AllowNICs(fresh, "alice", "lab-web-0"))
	b, err = os.ReadFile(fresh)
	require.NoError(t, err)
	assert.Equal(t, "alice veth lab-web-0 1024\n", string(b))
	require.NoError(t, DenyNICs(fresh, "alice", "lab-web-0"))
	assert.NoFileExists(t, fresh, "a list left empty goes")
}
