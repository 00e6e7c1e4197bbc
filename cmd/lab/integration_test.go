package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/labctl/lab/labtest"
	"github.com/labctl/lab/network"
)

// A 3-node lab comes up; nodes resolve and reach each other by name; exec
// returns output and exit codes; limits are applied; destroy leaves nothing.
func TestIntegrationUpExecDestroy(t *testing.T) {
	labtest.Integration(t)
	l := labtest.New(t, "it-basic", map[string]string{"lab.yaml": `
name: it-basic
networks: [{name: lan, subnet: 10.97.1.0/24}]
defaults: {memory: 256M, cpus: 1}
nodes:
  - role: db
  - role: web
    count: 2
    memory: 300M
`})
	out, stderr, code := l.Run("up")
	require.Equal(t, 0, code, "up failed:\n%s\n%s", out, stderr)
	assert.Contains(t, stderr, "lab it-basic is up")

	st := l.Status()
	require.Len(t, st, 3)
	for _, n := range []string{"db1", "web1", "web2"} {
		assert.Equal(t, "running", st[n].State, n)
		assert.Equal(t, "done", st[n].Provisioned, n)
	}
	assert.Equal(t, []string{"10.97.1.31"}, st["web1"].Addresses)
	labtest.RequireRouteVia(t, "10.97.1.11", "lab-it-basic-0")

	// Names: through dnsmasq (no /etc/hosts entry needed) and /etc/hosts.
	// getaddrinfo (what ping, curl and psql use) puts IPv4 first; the
	// nodes are dual stack, so getent hosts (IPv6 first) is not what to ask.
	o, c := l.Exec("web2", "sh", "-c", "getent ahosts db1.it-basic.lab | head -1; getent ahosts web1 | head -1")
	require.Equal(t, 0, c)
	assert.Contains(t, o, "10.97.1.11      STREAM db1.it-basic.lab")
	assert.Contains(t, o, "10.97.1.31      STREAM web1")
	o, c = l.Exec("web1", "sh", "-c", "mv /etc/hosts /etc/hosts.x; getent ahostsv4 db1; r=$?; mv /etc/hosts.x /etc/hosts; exit $r")
	require.Equal(t, 0, c, "dnsmasq did not answer for db1")
	assert.Contains(t, o, "10.97.1.11")
	o, c = l.Exec("web1", "getent", "-s", "dns", "ahostsv6", "db1.it-basic.lab")
	require.Equal(t, 0, c, "dnsmasq did not answer AAAA for db1")
	assert.Contains(t, o, "::11 ")
	_, c = l.Exec("web1", "getent", "hosts", "nosuchnode.it-basic.lab")
	assert.NotEqual(t, 0, c, "unknown names must not resolve")

	// Reach each other by name.
	o, c = l.Exec("web1", "ping", "-c", "1", "-W", "3", "db1")
	require.Equal(t, 0, c, o)
	assert.Contains(t, o, "1 received")

	// Output and exit codes pass through exec and ssh.
	o, c = l.Exec("db1", "sh", "-c", "echo out-$(hostname); exit 7")
	assert.Equal(t, 7, c)
	assert.Equal(t, "out-db1\n", o)
	_, _, c = l.Run("ssh", "web2", "--", "sh", "-c", "exit 4")
	assert.Equal(t, 4, c)
	_, stderr, c = l.Run("exec", "nosuch", "--", "true")
	assert.Equal(t, 2, c, "a node the lab does not have is a usage error")
	assert.Contains(t, stderr, `no node "nosuch"`)

	// No default route in nodes: nothing can leave the lab.
	o, _ = l.Exec("web1", "ip", "-4", "route")
	assert.NotContains(t, o, "default")

	// cgroup limits reach the container.
	o, c = l.Exec("web1", "sh", "-c", "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes")
	require.Equal(t, 0, c)
	assert.Equal(t, fmt.Sprint(300<<20), strings.TrimSpace(o))

	_, stderr, c = l.Run("destroy")
	require.Equal(t, 0, c, stderr)
	labtest.AssertNoLeaks(t, "it-basic", l.Dir)
}

// Scaling 2→3→1 touches only the nodes it must.
func TestIntegrationScale(t *testing.T) {
	labtest.Integration(t)
	lab := func(n int) string {
		return fmt.Sprintf("name: it-scale\nnetworks: [{name: lan, subnet: 10.97.2.0/24}]\nnodes:\n  - role: app\n    count: %d\n", n)
	}
	l := labtest.New(t, "it-scale", map[string]string{"lab.yaml": lab(2)})
	l.MustRun("up")
	pid1, pid2 := l.InitPID("app1"), l.InitPID("app2")
	require.NotZero(t, pid1)
	// The host's address on the lab's network is the bridge's own, not
	// its lowest port's: no node's coming or going changes it.
	bridgeMAC := func() string {
		b, err := os.ReadFile("/sys/class/net/lab-it-scale-0/address")
		require.NoError(t, err)
		return strings.TrimSpace(string(b))
	}
	assert.Equal(t, network.BridgeMAC("lab-it-scale-0"), bridgeMAC())

	l.Write("lab.yaml", lab(3))
	var p struct {
		Steps []struct{ Node, Action string }
	}
	require.NoError(t, json.Unmarshal([]byte(l.MustRun("plan", "--json")), &p))
	actions := map[string]string{}
	for _, s := range p.Steps {
		actions[s.Node] = s.Action
	}
	assert.Equal(t, map[string]string{"app1": "keep", "app2": "keep", "app3": "create"}, actions)
	l.MustRun("up")
	assert.Equal(t, pid1, l.InitPID("app1"), "app1 was restarted by a scale-up")
	assert.Equal(t, pid2, l.InitPID("app2"), "app2 was restarted by a scale-up")
	assert.NotZero(t, l.InitPID("app3"))
	assert.Equal(t, network.BridgeMAC("lab-it-scale-0"), bridgeMAC(), "a scale-up changed the host's MAC on the lab's network")
	o, c := l.Exec("app1", "getent", "ahostsv4", "app3")
	require.Equal(t, 0, c)
	assert.Contains(t, o, "10.97.2.13")

	l.Write("lab.yaml", lab(1))
	l.MustRun("up")
	assert.Equal(t, pid1, l.InitPID("app1"), "app1 was restarted by a scale-down")
	assert.Equal(t, network.BridgeMAC("lab-it-scale-0"), bridgeMAC(), "a scale-down changed the host's MAC on the lab's network")
	st := l.Status()
	assert.Len(t, st, 1)
	for _, gone := range []string{"app2", "app3"} {
		_, err := os.Stat("/var/lib/lxc/it-scale-" + gone)
		assert.True(t, os.IsNotExist(err), "%s still exists", gone)
	}
	o, _ = l.Exec("app1", "cat", "/etc/hosts")
	assert.NotContains(t, o, "app2")

	// halt keeps the node; up starts it again.
	l.MustRun("halt")
	assert.Zero(t, l.InitPID("app1"))
	assert.Equal(t, "stopped", l.Status()["app1"].State)
	l.MustRun("up")
	assert.Equal(t, "running", l.Status()["app1"].State)
}

// Provisioning: facts wire roles together, a failing step is reported and
// resumed, a changed script re-runs only its own nodes, health checks gate up.
func TestIntegrationProvisioning(t *testing.T) {
	labtest.Integration(t)
	topo := `
name: it-prov
networks: [{name: lan, subnet: 10.97.3.0/24}]
defaults: {health_timeout: 20s}
nodes:
  - role: db
    provision:
      - shell: scripts/db.sh
      - file: {src: files/motd, dst: /etc/motd, mode: "0600"}
  - role: app
    count: 2
    after: [db]
    provision:
      - shell: scripts/app.sh
        env: {GREETING: "hello"}
    health:
      - command: test -f /run/app-ready
  - role: lb
    after: [app]
    provision:
      - inline: |
          echo "backends: $LAB_ROLE_APP_NODES ($LAB_ROLE_APP_IPS)" > /etc/backends
          echo ran >> /root/lb-runs
`
	l := labtest.New(t, "it-prov", map[string]string{
		"lab.yaml":   topo,
		"files/motd": "welcome to the lab\n",
		"scripts/db.sh": `#!/bin/sh
set -e
echo "db $LAB_NODE index $LAB_INDEX at $LAB_IP"
echo "$LAB_IP" > /etc/db-ip
echo ran >> /root/db-runs
`,
		"scripts/app.sh": `#!/bin/bash
set -e
echo "$GREETING from $LAB_NODE; db is $LAB_ROLE_DB_IPS"
echo "db=$LAB_ROLE_DB_IPS" > /etc/app.conf
echo ran >> /root/app-runs
[ -f /fail-here ] && { echo "found /fail-here, giving up"; exit 3; }
nohup sh -c 'sleep 1; touch /run/app-ready' >/dev/null 2>&1 &
`,
	})
	out, stderr, code := l.Run("up")
	require.Equal(t, 0, code, "%s\n%s", out, stderr)
	// Health gated up: by the time it returned, the app was ready.
	_, c := l.Exec("app2", "test", "-f", "/run/app-ready")
	assert.Equal(t, 0, c, "up returned before the health check passed")
	// Streamed output names the node.
	assert.Contains(t, stderr, "hello from app1; db is 10.97.3.11")
	o, _ := l.Exec("app1", "cat", "/etc/app.conf")
	assert.Equal(t, "db=10.97.3.11\n", o)
	o, _ = l.Exec("lb1", "cat", "/etc/backends")
	assert.Equal(t, "backends: app1 app2 (10.97.3.31 10.97.3.32)\n", o)
	o, _ = l.Exec("db1", "stat", "-c", "%a %s", "/etc/motd")
	assert.Equal(t, "600 19\n", o)
	// Copying a file into a node leaves the host's file as it was.
	for rel, mode := range map[string]os.FileMode{"files/motd": 0o644, "scripts/db.sh": 0o755} {
		fi, err := os.Stat(filepath.Join(l.Dir, rel))
		require.NoError(t, err)
		assert.Equal(t, mode, fi.Mode().Perm(), "provisioning changed the mode of the host's %s", rel)
	}
	var facts struct {
		Node  string                            `json:"node"`
		Roles map[string]struct{ IPs []string } `json:"roles"`
	}
	o, _ = l.Exec("lb1", "cat", "/etc/lab/facts.json")
	require.NoError(t, json.Unmarshal([]byte(o), &facts))
	assert.Equal(t, "lb1", facts.Node)
	assert.Equal(t, []string{"10.97.3.31", "10.97.3.32"}, facts.Roles["app"].IPs)

	// A second up runs nothing.
	l.MustRun("up")
	o, _ = l.Exec("db1", "cat", "/root/db-runs")
	assert.Equal(t, "ran\n", o)

	// A failing step: exit 1, and the error names node, step, exit code,
	// last output and the log; nodes that do not depend on it finish.
	_, c = l.Exec("app2", "touch", "/fail-here")
	require.Equal(t, 0, c)
	l.Write("scripts/app.sh", strings.Replace(mustRead(t, l, "scripts/app.sh"), "set -e", "set -e\necho v2", 1))
	_, stderr, code = l.Run("up")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "node app2: provision step 1 (scripts/app.sh): exit 3")
	assert.Contains(t, stderr, "found /fail-here, giving up")
	assert.Contains(t, stderr, filepath.Join(l.Dir, ".lab/logs/app2.log"))
	assert.Contains(t, stderr, "lb1")
	log, err := os.ReadFile(filepath.Join(l.Dir, ".lab/logs/app2.log"))
	require.NoError(t, err)
	assert.Contains(t, string(log), "found /fail-here")
	assert.Equal(t, "failed", l.Status()["app2"].Provisioned)
	o, _ = l.Exec("app1", "cat", "/root/app-runs")
	assert.Equal(t, "ran\nran\n", o, "the changed script re-runs on app1 too")

	// The next up resumes from what failed: app2's step, then lb.
	_, c = l.Exec("app2", "rm", "/fail-here")
	require.Equal(t, 0, c)
	l.MustRun("up")
	o, _ = l.Exec("app2", "cat", "/root/app-runs")
	assert.Equal(t, "ran\nran\nran\n", o)
	o, _ = l.Exec("app1", "cat", "/root/app-runs")
	assert.Equal(t, "ran\nran\n", o, "app1 succeeded before and must not run again")
	o, _ = l.Exec("db1", "cat", "/root/db-runs")
	assert.Equal(t, "ran\n", o, "db's script did not change")
	assert.Equal(t, "done", l.Status()["lb1"].Provisioned)

	// lab provision --role forces a role's steps again.
	l.MustRun("provision", "--role", "db")
	o, _ = l.Exec("db1", "cat", "/root/db-runs")
	assert.Equal(t, "ran\nran\n", o)

	// exec --role runs everywhere with prefixed output.
	out, _, code = l.Run("exec", "--role", "app", "--", "sh", "-c", "echo $LAB_NODE")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "app1 | app1\n")
	assert.Contains(t, out, "app2 | app2\n")
}

// A health check that never passes fails up after the timeout, naming the
// node and the check.
func TestIntegrationHealthTimeout(t *testing.T) {
	labtest.Integration(t)
	l := labtest.New(t, "it-health", map[string]string{"lab.yaml": `
name: it-health
networks: [{name: lan, subnet: 10.97.4.0/24}]
defaults: {health_timeout: 3s}
nodes:
  - role: svc
    health: [{tcp: 7777}]
`})
	_, stderr, code := l.Run("up")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "node svc1: unhealthy after 3s")
	assert.Contains(t, stderr, "health[0] (tcp 7777)")
}

func mustRead(t *testing.T, l *labtest.Lab, rel string) string {
	b, err := os.ReadFile(filepath.Join(l.Dir, rel))
	require.NoError(t, err)
	return string(b)
}
