package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/labctl/lab/host"
	"github.com/labctl/lab/network"
)

// asHelper runs the installed network helper with a request, as user
// (root when ""): its stderr, and whether it succeeded.
func asHelper(t *testing.T, user, req string) (string, bool) {
	t.Helper()
	argv := []string{host.HelperPath}
	if user != "" {
		argv = append([]string{"runuser", "-u", user, "--"}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = "/"
	cmd.Stdin = strings.NewReader(req)
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
}

// resolve asks the dnsmasq of a lab bridge for a name.
func resolve(server, name string) ([]string, error) {
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{Timeout: 2 * time.Second}).DialContext(ctx, "udp", server+":53")
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return r.LookupHost(ctx, name)
}

// The network helper, as a member of the lab group: it makes the user's
// lab network (bridge, drop rules, dnsmasq that answers the lab's names,
// the user's veths allowed on it), changes its names, and takes it down;
// what the issue says a member might try is refused.
func helperAsUser(t *testing.T, user string) {
	const up = `{"op": "up", "lab": "hlp", "index": 0, "subnet": "10.97.50.0/24", "domain": "hlp.lab",
		"hosts": [{"addr": "10.97.50.11", "names": ["n1"]}]}`
	t.Cleanup(func() { asHelper(t, user, `{"op": "down", "lab": "hlp"}`) })
	out, ok := asHelper(t, user, up)
	require.True(t, ok, out)
	_, ok = asHelper(t, user, up)
	require.True(t, ok, "again: nothing changes")
	addrs, err := exec.Command("ip", "-4", "-o", "addr", "show", "dev", "lab-hlp-0").Output()
	require.NoError(t, err)
	assert.Contains(t, string(addrs), "10.97.50.1/24")
	rules, err := exec.Command("nft", "list", "table", "inet", "lab_hlp").Output()
	require.NoError(t, err)
	assert.Contains(t, string(rules), `iifname "lab-hlp-0" oifname != "lab-hlp-0" counter packets 0 bytes 0 drop`)
	usernet, err := os.ReadFile("/etc/lxc/lxc-usernet")
	require.NoError(t, err)
	assert.Contains(t, string(usernet), user+" veth lab-hlp-0 1024\n")
	got, err := resolve("10.97.50.1", "n1.hlp.lab")
	require.NoError(t, err)
	assert.Equal(t, []string{"10.97.50.11"}, got)

	out, ok = asHelper(t, user, `{"op": "hosts", "lab": "hlp", "hosts": [{"addr": "10.97.50.12", "names": ["n2"]}]}`)
	require.True(t, ok, out)
	got, err = resolve("10.97.50.1", "n2.hlp.lab")
	require.NoError(t, err)
	assert.Equal(t, []string{"10.97.50.12"}, got)

	// A VM node's port: a tap device of the user's on the lab's bridge.
	out, ok = asHelper(t, user, `{"op": "tap", "lab": "hlp", "index": 0, "ports": ["v0000000c-0"]}`)
	require.True(t, ok, out)
	owner, isTap := network.TapOwner("v0000000c-0")
	require.True(t, isTap)
	u, err := host.LookupUser(user)
	require.NoError(t, err)
	assert.Equal(t, u.UID, owner)
	master, _ := os.Readlink("/sys/class/net/v0000000c-0/master")
	assert.Equal(t, "lab-hlp-0", filepath.Base(master))

	// Escapes. A bridge of root's lab; a subnet over a route of the host;
	// an interface named as a VM's port that is no tap; a tap of root's
	// (made here, as root, for the test).
	require.NoError(t, exec.Command("ip", "tuntap", "add", "dev", "v0000000b-0", "mode", "tap").Run())
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", "v0000000b-0").Run() })
	for _, l := range [][]string{{"lab-rootx-0"}, {"labtdum0", "10.97.51.1/24"}, {"v0000000a-0"}} {
		require.NoError(t, exec.Command("ip", "link", "add", l[0], "type", "bridge").Run())
		t.Cleanup(func() { _ = exec.Command("ip", "link", "del", l[0]).Run() })
		if len(l) > 1 {
			require.NoError(t, exec.Command("ip", "addr", "add", l[1], "dev", l[0]).Run())
			require.NoError(t, exec.Command("ip", "link", "set", l[0], "up").Run())
		}
	}
	for _, tc := range []struct{ who, req, want string }{
		{user, `{"op": "up", "lab": "rootx", "subnet": "10.97.52.0/24"}`, "lab rootx: its networks were not made through the helper"},
		{user, `{"op": "down", "lab": "rootx"}`, "lab rootx: its networks were not made through the helper"},
		{user, `{"op": "up", "lab": "hlq", "subnet": "10.97.51.0/24"}`, "overlaps the host's route to 10.97.51.0/24 on labtdum0"},
		{user, `{"op": "up", "lab": "hlq", "subnet": "0.0.0.0/0"}`, "want a masked IPv4 subnet"},
		{user, `{"op": "up", "lab": "hlq", "subnet": "10.97.53.0/24", "domain": "x\nconf-file=/etc/shadow"}`, `not a DNS name`},
		{user, `{"op": "hosts", "lab": "hlp", "hosts_file": "/etc/shadow"}`, `unknown field "hosts_file"`},
		{user, `{"op": "up", "lab": "hlp", "bridge": "eth0", "subnet": "10.97.50.0/24"}`, `unknown field "bridge"`},
		{"", `{"op": "down", "lab": "hlp"}`, "lab hlp: another user's"},
		{user, `{"op": "hosts", "lab": "hlp", "index": 5, "hosts": [{"addr": "10.97.50.12", "names": ["n2"]}]}`, "lab hlp: network 5 is not one of yours that is up"},
		// A firewall, partition or delay line that reaches past the lab.
		{user, `{"op": "policy", "lab": "hlp", "policy": {"Lab": "hlp", "Guards": [{"Node": "n1", "Addr": "192.168.1.10"}]}}`, "192.168.1.10 is not in the lab's networks"},
		{user, `{"op": "policy", "lab": "hlp", "policy": {"Lab": "hlp", "Ports": [{"Node": "n1", "Name": "lo", "Bridge": "lab-hlp-0", "Addr": "10.97.50.11"}]}}`, `"lo" is not a port on lab hlp's bridge`},
		{user, `{"op": "policy", "lab": "hlp", "policy": {"Lab": "hlp", "Bridges": {"labtdum0": true}}}`, `bridge "labtdum0" is not one of lab hlp's`},
		{user, `{"op": "policy", "lab": "rootx", "policy": {"Lab": "rootx"}}`, "lab rootx: not one of yours"},
		{user, `{"op": "delay", "lab": "hlp", "fault": "f1", "ports": ["lo"], "delay": {"Delay": 1000000}}`, `"lo" is not a port`},
		{user, `{"op": "undelay", "lab": "hlp", "fault": "f1", "ports": ["labtdum0"], "pid": 1}`, `"labtdum0" is not a port`},
		// A VM port that is not one, or not the user's, or on no bridge of its lab.
		{user, `{"op": "tap", "lab": "hlp", "index": 0, "ports": ["eth0"]}`, `"eth0" is not a VM port's name`},
		{user, `{"op": "tap", "lab": "hlp", "index": 0, "ports": ["../../x"]}`, `is not a VM port's name`},
		{user, `{"op": "tap", "lab": "hlp", "index": 0, "ports": ["v0000000a-0"]}`, "v0000000a-0 exists and is not a tap device of yours"},
		{user, `{"op": "untap", "lab": "hlp", "ports": ["v0000000b-0"]}`, "v0000000b-0 exists and is not a tap device of yours"},
		{user, `{"op": "tap", "lab": "rootx", "index": 0, "ports": ["v0000000d-0"]}`, "lab rootx: not one of yours"},
		{user, `{"op": "tap", "lab": "hlp", "index": 3, "ports": ["v0000000d-0"]}`, "lab hlp has no bridge lab-hlp-3 up"},
	} {
		out, ok := asHelper(t, tc.who, tc.req)
		assert.False(t, ok, "%s: %s", tc.req, out)
		assert.Contains(t, out, tc.want, tc.req)
	}
	// The delay line's own mode is the helper's to start, not a user's.
	direct, err := exec.Command("runuser", "-u", user, "--", host.HelperPath, "__delay-line", "--port", "lo", "--delay", "1s").CombinedOutput()
	assert.Error(t, err)
	assert.Contains(t, string(direct), "a delay line is started by the helper, not by hand")
	assert.NoFileExists(t, "/sys/class/net/"+network.TapName("lo"), "no tap was made")
	_, err = os.Stat("/run/lab/helper/hlq.uid")
	assert.ErrorIs(t, err, os.ErrNotExist, "a refused up leaves the lab nobody's")
	assert.NoFileExists(t, "/sys/class/net/lab-hlq-0")

	assert.FileExists(t, "/sys/class/net/v0000000b-0/tun_flags", "root's tap stays")
	assert.NoFileExists(t, "/sys/class/net/v0000000d-0")

	out, ok = asHelper(t, user, `{"op": "down", "lab": "hlp"}`)
	require.True(t, ok, out)
	assert.NoFileExists(t, "/sys/class/net/lab-hlp-0")
	assert.NoFileExists(t, "/sys/class/net/v0000000c-0", "the lab's VM ports went with its network")
	assert.Error(t, exec.Command("nft", "list", "table", "inet", "lab_hlp").Run(), "the lab's table went with its last network")
	usernet, _ = os.ReadFile("/etc/lxc/lxc-usernet")
	assert.NotContains(t, string(usernet), "lab-hlp-0")
	assert.NoFileExists(t, "/etc/lxc/lxc-usernet.lock")
	assert.NoFileExists(t, "/run/lab/helper/hlp.uid")
	assert.NoFileExists(t, "/run/lab/lab-hlp-0.conf")
}
