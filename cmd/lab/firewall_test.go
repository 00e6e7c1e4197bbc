package main

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/labctl/lab/labtest"
)

// listenSh makes a node answer on TCP port $PORT with its name, through a
// socket unit of systemd's (no server package needed; enabled, so it comes
// back after a reboot).
const listenSh = `#!/bin/sh
set -e
cat > /etc/systemd/system/lab-listen.socket <<UNIT
[Socket]
ListenStream=$PORT
Accept=yes
[Install]
WantedBy=sockets.target
UNIT
cat > /etc/systemd/system/lab-listen@.service <<UNIT
[Service]
ExecStart=/bin/echo $LAB_NODE
StandardInput=socket
StandardOutput=socket
UNIT
systemctl daemon-reload
systemctl enable --now lab-listen.socket
`

func firewallLab(web int) string {
	return fmt.Sprintf(`
name: it-fw
networks: [{name: lan, subnet: 10.97.16.0/24}, {name: dev, subnet: 10.97.17.0/24}]
defaults: {memory: 256M}
nodes:
  - role: adm
  - role: web
    count: %d
  - role: pg
    provision: [{shell: listen.sh, env: {PORT: "5432"}}]
    firewall:
      - allow: {from: [web], tcp: [5432]}
      - allow: {from: [host], tcp: ["5432-5433"]}
  - role: proxy
    networks: [lan, dev]
  - role: devdb
    networks: [dev]
    provision: [{shell: listen.sh, env: {PORT: "5432"}}]
`, web)
}

// connect tries a TCP connection from a node; it returns what the server said.
func connect(l *labtest.Lab, from, addr string) (string, int) {
	return l.Exec(from, "timeout", "3", "bash", "-c", "exec 3<>/dev/tcp/"+strings.Replace(addr, ":", "/", 1)+" && head -c 64 <&3")
}

// A role's firewall: only what it allows reaches its nodes, replies to what
// they opened always pass, scaling a source role follows, and no node routes
// between its networks.
func TestIntegrationFirewall(t *testing.T) {
	labtest.Integration(t)
	l := labtest.New(t, "it-fw", map[string]string{"lab.yaml": firewallLab(1), "listen.sh": listenSh})
	l.MustRun("up")
	pg := "10.97.16.51:5432"

	out, code := connect(l, "web1", pg)
	assert.Equal(t, 0, code, "web1 may reach pg1:5432")
	assert.Contains(t, out, "pg1")
	_, code = connect(l, "adm1", pg)
	assert.NotEqual(t, 0, code, "adm1 must not reach pg1:5432")
	_, code = l.Exec("adm1", "ping", "-c1", "-W2", "pg1")
	assert.NotEqual(t, 0, code, "pg allows no ping")
	_, code = l.Exec("pg1", "ping", "-c1", "-W2", "adm1")
	assert.Equal(t, 0, code, "replies to what pg1 opened pass")
	for _, n := range []string{"adm1", "web1", "pg1", "proxy1", "devdb1"} {
		_, code = l.Exec(n, "true")
		assert.Equal(t, 0, code, "lab exec works on %s", n)
	}

	// From the host, as allowed.
	labtest.RequireRouteVia(t, "10.97.16.51", "lab-it-fw-0")
	conn, err := net.DialTimeout("tcp", pg, 3*time.Second)
	require.NoError(t, err, "the host may reach pg1:5432")
	b := make([]byte, 16)
	n, _ := conn.Read(b)
	conn.Close()
	assert.Equal(t, "pg1\n", string(b[:n]))

	// Status lists the rules in force.
	var doc struct {
		Nodes []struct {
			Name     string   `json:"name"`
			Firewall []string `json:"firewall"`
		} `json:"nodes"`
	}
	require.NoError(t, json.Unmarshal([]byte(l.MustRun("status", "--json")), &doc))
	for _, n := range doc.Nodes {
		if n.Name == "pg1" {
			assert.Equal(t, []string{"from web1: tcp 5432", "from host: tcp 5432-5433"}, n.Firewall)
		}
	}

	// Scaling web adds web2 to pg's sources: plan says so, up does it.
	l.Write("lab.yaml", firewallLab(2))
	plan := l.MustRun("plan")
	assert.Contains(t, plan, "# firewall pg1")
	assert.Contains(t, plan, "accept from web1 web2: tcp 5432")
	l.MustRun("up")
	out, code = connect(l, "web2", pg)
	assert.Equal(t, 0, code, "web2 may reach pg1:5432 once it exists")
	assert.Contains(t, out, "pg1")

	// proxy1 is on lan and dev; adm1 (lan) sends to devdb1 (dev) through it,
	// with forwarding on in proxy1: the bridge drops what proxy1 would send
	// as someone else, so live and dev stay apart.
	_, code = l.Exec("proxy1", "sh", "-c", "sysctl -qw net.ipv4.ip_forward=1")
	require.Equal(t, 0, code)
	_, code = l.Exec("adm1", "ip", "route", "add", "10.97.17.0/24", "via", "10.97.16.71")
	require.Equal(t, 0, code)
	_, code = l.Exec("devdb1", "ip", "route", "add", "10.97.16.0/24", "via", "10.97.17.71")
	require.Equal(t, 0, code, "and the way back, so only the bridge's rule can stop it")
	out, code = connect(l, "proxy1", "10.97.17.91:5432")
	assert.Equal(t, 0, code, "proxy1 reaches devdb1 itself")
	assert.Contains(t, out, "devdb1")
	_, code = connect(l, "adm1", "10.97.17.91:5432")
	assert.NotEqual(t, 0, code, "adm1 must not reach dev through proxy1")

	l.MustRun("destroy")
	labtest.AssertNoLeaks(t, "it-fw", l.Dir)
}
