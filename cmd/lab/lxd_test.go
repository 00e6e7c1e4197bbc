package main

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/labctl/lab/labtest"
)

// A lab file with provider lxd on a 3-member LXD cluster (the test bed of
// docs/lxd.md): lab up makes the lab's network across the members and its
// nodes where LXD's scheduler puts them (db pinned to m3), provisions and
// health-checks them; they reach each other by name across members;
// status names each node's member; scaling adds a node whose name the
// others then resolve; destroy leaves nothing in the cluster (the test
// bed's own check, when it ends).
func TestIntegrationLXDProvider(t *testing.T) {
	labtest.Integration(t)
	cl := labtest.NewLXDCluster(t, 3, "10.97.252")
	lab := labtest.New(t, "lxdl", map[string]string{
		"lab.yaml": `name: lxdl
defaults: {provider: lxd}
networks: [{name: lan, subnet: 10.97.253.0/24}]
nodes:
  - role: web
    count: 2
    provision: [{shell: web.sh}]
  - role: db
    lxd: {target: m3}
    after: [web]
    health: [{command: "ping -c1 -W2 web1 && ping -c1 -W2 web2.lxdl.lab"}]
    firewall:
      - allow: {from: [web1], icmp: true}
      - allow: {from: [host], tcp: [7]}
aliases: {www: web}
`,
		"web.sh": "#!/bin/sh\nset -e\necho \"$LAB_NODE\" > /srv/name\n",
	})
	lab.Env = cl.Env
	lab.OnFailure("db1", "nft", "list", "ruleset")
	lab.OnFailure("web1", "ip", "-6", "addr")

	out, errs, code := lab.Run("up")
	require.Equal(t, 0, code, "%s%s", out, errs)
	assert.Contains(t, errs, "lab lxdl is up")
	st := lab.Status()
	require.Len(t, st, 3)
	members := map[string]bool{}
	for name, n := range st {
		assert.Equal(t, "running", n.State, name)
		assert.Equal(t, "done", n.Provisioned, name)
		assert.Contains(t, cl.Members, n.Member, "%s: lab status names its member", name)
		members[n.Member] = true
	}
	assert.Equal(t, "m3", st["db1"].Member, "lxd: {target: m3} pins it")
	assert.GreaterOrEqual(t, len(members), 2, "the nodes are spread over the cluster")
	table := lab.MustRun("status")
	assert.Regexp(t, `db1 +db +lxd@m3 +running`, table)

	// Names and addresses across members, through the network's DNS on
	// every member; a role's alias answers with each of its nodes. db1's
	// firewall, inside it, lets web1 ping it and not web2.
	got, code := lab.Exec("web1", "sh", "-c", "getent ahostsv4 db1.lxdl.lab; cat /srv/name; ping -c1 -W2 10.97.253.31 >/dev/null && echo reached")
	require.Equal(t, 0, code, got)
	assert.Contains(t, got, st["db1"].Addresses[0]+" ")
	require.NotEmpty(t, st["db1"].Addresses6)
	got6, code := lab.Exec("web1", "sh", "-c", "getent hosts db1.lxdl.lab; ping -6 -c1 -W2 "+st["db1"].Addresses6[0]+" >/dev/null && echo reached")
	require.Equal(t, 0, code, got6)
	assert.Regexp(t, "^"+regexp.QuoteMeta(st["db1"].Addresses6[0])+` +db1\.lxdl\.lab\nreached\n$`, got6, "dual stack across members, as on one host")
	assert.Contains(t, got, "web1\n", "provisioned")
	assert.Equal(t, "web1\n", lab.MustRun("ssh", "web1", "--", "cat", "/srv/name"), "lab ssh goes through LXD")
	_, code = lab.Exec("web2", "logger", "-t", "lxdtest", "a line for lab logs")
	require.Equal(t, 0, code)
	labtest.Eventually(t, 10*time.Second, 250*time.Millisecond, "web2's journal through lab logs", func() bool {
		return strings.Contains(lab.MustRun("logs", "web2"), "a line for lab logs")
	})
	assert.Contains(t, got, "reached")
	www, code := lab.Exec("db1", "getent", "ahostsv4", "www")
	require.Equal(t, 0, code, www)
	assert.Contains(t, www, st["web1"].Addresses[0])
	assert.Contains(t, www, st["web2"].Addresses[0])
	got, code = lab.Exec("web2", "ping", "-c1", "-W1", "db1")
	assert.NotEqual(t, 0, code, "db1's firewall lets only web1 in: %s", got)
	fromHost(t, st)

	// Scale: a third web node, whose name db1 then resolves.
	b, err := os.ReadFile(filepath.Join(lab.Dir, "lab.yaml"))
	require.NoError(t, err)
	lab.Write("lab.yaml", strings.Replace(string(b), "count: 2", "count: 3", 1))
	lab.MustRun("up")
	got, code = lab.Exec("db1", "ping", "-c1", "-W2", "web3")
	require.Equal(t, 0, code, got)

	lxdSnapshots(t, lab)
	lxdFaults(t, lab, st)
	lxdOffline(t, lab, cl)
	lxdMemberRemoved(t, lab, cl)

	lab.MustRun("destroy")
	assert.Empty(t, cl.Leaks(), "destroy leaves nothing in the cluster")
}

// The host reaches every node, on any member, at its own addresses: it is
// a station on the lab's network (its port: providers/lxd/hostport.go),
// and db1's firewall lets it in on TCP port 7 only.
func fromHost(t *testing.T, st map[string]labtest.NodeStatus) {
	port := "lab-lxdl-0-h"
	for name, n := range st {
		require.NotEmpty(t, n.Addresses6, name)
		for _, a := range []string{n.Addresses[0], n.Addresses6[0]} {
			labtest.RequireRouteVia(t, a, port)
			assert.True(t, labtest.Reaches(net.JoinHostPort(a, "7")), "%s on %s: the host reaches %s", name, n.Member, a)
		}
	}
	db1 := st["db1"].Addresses[0]
	assert.False(t, labtest.Reaches(net.JoinHostPort(db1, "9")), "db1's firewall lets the host in on port 7 only")
	assert.True(t, labtest.Reaches(net.JoinHostPort(st["web1"].Addresses[0], "9")), "web1 has no firewall")
}

// A node's snapshot is its instance as LXD exports it: restored, the node
// is as saved, on its member, at its address; a clone takes the disk and
// gets its own name, address and steps.
func lxdSnapshots(t *testing.T, lab *labtest.Lab) {
	before := lab.Status()
	_, code := lab.Exec("web1", "sh", "-c", "echo saved > /srv/mark")
	require.Equal(t, 0, code)
	lab.MustRun("snapshot", "save", "s1", "web1")
	_, code = lab.Exec("web1", "sh", "-c", "echo changed > /srv/mark")
	require.Equal(t, 0, code)
	lab.MustRun("snapshot", "restore", "s1", "web1")
	got, code := lab.Exec("web1", "cat", "/srv/mark")
	require.Equal(t, 0, code, got)
	assert.Equal(t, "saved\n", got)
	after := lab.Status()["web1"]
	assert.Equal(t, before["web1"].Member, after.Member, "restored on its member")
	assert.Equal(t, "running", after.State)
	got, code = lab.Exec("web2", "ping", "-c1", "-W2", "web1")
	assert.Equal(t, 0, code, "web1 at its address: %s", got)

	lab.MustRun("clone", "web1", "web3")
	got, code = lab.Exec("web3", "sh", "-c", "cat /srv/mark /srv/name; hostname; ip -4 -o addr show eth0")
	require.Equal(t, 0, code, got)
	assert.Regexp(t, `^saved\nweb3\nweb3\n.* `+regexp.QuoteMeta(lab.Status()["web3"].Addresses[0])+`/24 `, got, "web1's disk, web3's name, steps and address")
	got, code = lab.Exec("db1", "ping", "-c1", "-W2", "web3")
	assert.Equal(t, 0, code, got)
	lab.MustRun("snapshot", "rm", "s1")
}

// Pause and kill go through LXD's API; a role's alias leaves a paused
// node out; a partition is cut inside the nodes; a delay, which lab makes
// on this host's node ports, is refused with the reason.
func lxdFaults(t *testing.T, lab *labtest.Lab, st map[string]labtest.NodeStatus) {
	p := strings.TrimSpace(lab.MustRun("fault", "pause", "web2"))
	assert.Equal(t, "paused", lab.Status()["web2"].State)
	www, code := lab.Exec("db1", "getent", "ahostsv4", "www")
	require.Equal(t, 0, code, www)
	assert.Contains(t, www, st["web1"].Addresses[0])
	assert.NotContains(t, www, st["web2"].Addresses[0], "the alias leaves out a paused node")
	lab.MustRun("fault", "heal", p)
	assert.Equal(t, "running", lab.Status()["web2"].State)

	k := strings.TrimSpace(lab.MustRun("fault", "kill", "db1"))
	assert.Equal(t, "stopped", lab.Status()["db1"].State)
	lab.MustRun("fault", "heal", k)
	got, code := lab.Exec("web1", "ping", "-c1", "-W2", "db1")
	require.Equal(t, 0, code, "healed: %s", got)
	got, code = lab.Exec("web2", "ping", "-c1", "-W1", "db1")
	assert.NotEqual(t, 0, code, "db1 booted with its firewall: %s", got)

	// A partition is cut inside the nodes, established traffic included.
	cut := strings.TrimSpace(lab.MustRun("fault", "partition", "web1", "db1"))
	got, code = lab.Exec("web1", "ping", "-c1", "-W1", "db1")
	assert.NotEqual(t, 0, code, "partitioned: %s", got)
	got, code = lab.Exec("web2", "ping", "-c1", "-W2", "web1")
	assert.Equal(t, 0, code, "the rest is not: %s", got)
	lab.MustRun("fault", "heal", cut)
	got, code = lab.Exec("web1", "ping", "-c1", "-W2", "db1")
	assert.Equal(t, 0, code, "healed: %s", got)

	_, errs, code := lab.Run("fault", "delay", "db1", "100ms")
	assert.Equal(t, 2, code)
	assert.Contains(t, errs, "does not cross this host")
}

// A member offline: status says which nodes are unreachable and where;
// up refuses, naming them; with the member back, all is as before.
func lxdOffline(t *testing.T, lab *labtest.Lab, cl *labtest.LXDCluster) {
	cl.Link(t, "m3", false)
	relinked := false
	defer func() {
		if !relinked {
			cl.Link(t, "m3", true)
		}
	}()
	labtest.Eventually(t, 90*time.Second, time.Second, "db1 unreachable on m3", func() bool {
		n := lab.Status()["db1"]
		return n.State == "unreachable" && n.Member == "m3"
	})
	table := lab.MustRun("status")
	assert.Regexp(t, `db1 +db +lxd@m3 +unreachable .*its member m3 is offline`, table)
	_, errs, code := lab.Run("up")
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, "nodes on offline cluster members: db1 on m3")
	cl.Link(t, "m3", true)
	relinked = true
	labtest.Eventually(t, 90*time.Second, time.Second, "db1 back", func() bool { return lab.Status()["db1"].State == "running" })
	lab.MustRun("up")
}

// A member that does not come back, removed from the cluster: up says why
// it cannot make a node pinned to it, and with the pin gone makes every
// node it held again on the others.
func lxdMemberRemoved(t *testing.T, lab *labtest.Lab, cl *labtest.LXDCluster) {
	cl.Link(t, "m3", false)
	labtest.Eventually(t, 90*time.Second, time.Second, "db1 unreachable on m3", func() bool { return lab.Status()["db1"].State == "unreachable" })
	var lost []string
	for name, n := range lab.Status() {
		if n.Member == "m3" {
			lost = append(lost, name)
		}
	}
	cl.Lxc(t, "cluster", "remove", "m3", "--force", "--yes")
	_, errs, code := lab.Run("up")
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, "node db1: lxd local: create instance lxdl-db1 on member m3: Cluster member not found")
	b, err := os.ReadFile(filepath.Join(lab.Dir, "lab.yaml"))
	require.NoError(t, err)
	lab.Write("lab.yaml", strings.Replace(string(b), "    lxd: {target: m3}\n", "", 1))
	lab.MustRun("up")
	st := lab.Status()
	for _, name := range lost {
		assert.Equal(t, "running", st[name].State, name)
		assert.Contains(t, []string{"m1", "m2"}, st[name].Member, "%s made again on a member that is left", name)
	}
	got, code := lab.Exec("web1", "ping", "-c1", "-W2", "db1")
	assert.Equal(t, 0, code, got)
}
