package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/labctl/lab/host"
	"github.com/labctl/lab/labtest"
	"github.com/labctl/lab/network"
)

const rootlessLab = `name: %s
networks: [{name: lan, subnet: 10.97.54.0/24}]
defaults: {memory: 256M, cpus: 1}
nodes:
  - role: db
    provision:
      - shell: scripts/db.sh
    firewall:
      - allow: {from: [web], icmp: true}
  - role: web
    after: [db]
    provision:
      - shell: scripts/web.sh
    health:
      - command: ping -c1 -W2 db1
  - role: other
`

// A user set up by lab host setup brings up a lab without sudo:
// its own image (bootstrapped in its user namespace), unprivileged nodes
// whose root is its subordinate range, provisioned in order, on a network
// the helper made, resolving each other by name; it runs commands in
// them, its firewall and partitions hold (the helper's nftables rules name
// the veths lxc-user-nic made, again after a node restarts), snapshots
// save and restore, and destroy leaves nothing behind.
func rootlessLabAsUser(t *testing.T, usr *labtest.User) {
	user := usr.Name
	u, err := host.LookupUser(user)
	require.NoError(t, err)
	start, _, err := u.Range()
	require.NoError(t, err)
	name := fmt.Sprintf("ul%d", os.Getpid()%10000)
	dir := filepath.Join("/home", user, "lab")
	files := map[string]string{
		"lab.yaml":       fmt.Sprintf(rootlessLab, name),
		"scripts/db.sh":  "echo hello > /root/db\nid -u\n",
		"scripts/web.sh": "getent hosts db1\n",
	}
	usr.Write(dir, files)
	run := func(args ...string) (string, int) { return usr.Lab(dir, args...) }
	t.Cleanup(func() {
		if out, code := run("destroy"); code != 0 {
			t.Errorf("destroy: %s", out)
		}
		labtest.AssertNoLeaks(t, name, dir)
	})

	out, code := run("up")
	require.Equal(t, 0, code, "up as %s:\n%s", user, out)
	assert.Contains(t, out, "lab "+name+" is up")
	st, code := run("status")
	require.Equal(t, 0, code, st)
	assert.Regexp(t, `db1 +db +lxc +running`, st)
	assert.Regexp(t, `web1 +web +lxc +running`, st)

	// Root in a node is the user's first subordinate id.
	m, code := run("exec", "db1", "--", "cat", "/proc/self/uid_map")
	require.Equal(t, 0, code, m)
	assert.Equal(t, fmt.Sprintf("0 %d 65536", start), strings.Join(strings.Fields(m), " "))
	made, code := run("exec", "db1", "--", "cat", "/root/db")
	require.Equal(t, 0, code, made)
	assert.Equal(t, "hello", strings.TrimSpace(made), "the provisioning step ran in the node")
	var fi syscall.Stat_t
	require.NoError(t, syscall.Stat(filepath.Join("/home", user, ".local/share/lab/lxc", name+"_db1", "delta0/root/db"), &fi))
	assert.Equal(t, strconv.Itoa(int(start)), strconv.Itoa(int(fi.Uid)), "what root in the node made is the mapped id's on the host")

	// Names resolve through the helper's dnsmasq.
	hosts, code := run("exec", "web1", "--", "getent", "ahostsv4", "db1")
	require.Equal(t, 0, code, hosts)
	assert.Contains(t, hosts, "10.97.54.11")

	// The firewall: db1 answers web1 only; its rules name the user's veths.
	_, code = run("exec", "web1", "--", "ping", "-c1", "-W2", "db1")
	assert.Equal(t, 0, code, "web may ping db")
	_, code = run("exec", "other1", "--", "ping", "-c1", "-W1", "db1")
	assert.NotEqual(t, 0, code, "other may not")
	portsGuarded := func(what string) {
		var links []byte
		for i := 0; i < 50; i++ { // a stopped node's veth goes with its namespace, which the kernel ends a moment later
			links, err = exec.Command("ip", "-o", "link", "show", "master", "lab-"+name+"-0").Output()
			require.NoError(t, err)
			if strings.Count(strings.TrimSpace(string(links)), "\n") == 2 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		rules, err := exec.Command("nft", "list", "table", "bridge", network.Table(name)).CombinedOutput()
		require.NoError(t, err, "%s", rules)
		n := 0
		for _, l := range strings.Split(strings.TrimSpace(string(links)), "\n") {
			port, _, _ := strings.Cut(strings.Fields(l)[1], "@")
			assert.Contains(t, string(rules), `iifname "`+port+`"`, "%s: port %s sends only as its node", what, port)
			n++
		}
		assert.Equal(t, 3, n, "%s: one port per node", what)
	}
	portsGuarded("after up")

	// Faults: a partition cuts, heal restores; a killed node comes back
	// on a new veth, and its rules follow.
	f, code := run("fault", "partition", "db1", "web1")
	require.Equal(t, 0, code, f)
	_, code = run("exec", "web1", "--", "ping", "-c1", "-W1", "db1")
	assert.NotEqual(t, 0, code, "partitioned")
	out, code = run("fault", "heal", strings.Fields(f)[0])
	require.Equal(t, 0, code, out)
	_, code = run("exec", "web1", "--", "ping", "-c1", "-W2", "db1")
	assert.Equal(t, 0, code, "healed")
	f, code = run("fault", "kill", "other1")
	require.Equal(t, 0, code, f)
	out, code = run("fault", "heal", strings.Fields(f)[0])
	require.Equal(t, 0, code, out)
	portsGuarded("after other1 restarted")
	f, code = run("fault", "delay", "db1", "150ms")
	require.Equal(t, 0, code, f)
	rtt, code := run("exec", "web1", "--", "ping", "-c2", "-W2", "db1")
	require.Equal(t, 0, code, rtt)
	assert.Regexp(t, `time=(1[5-9][0-9]|[2-9][0-9][0-9])(\.[0-9]+)? ms`, rtt, "db1's replies wait 150 ms")
	out, code = run("fault", "heal", strings.Fields(f)[0])
	require.Equal(t, 0, code, out)
	assert.Empty(t, network.DelayPIDs(name), "heal ended the delay line")

	// The host's kernel and disks are out of reach.
	watches, err := os.ReadFile("/proc/sys/fs/inotify/max_user_watches")
	require.NoError(t, err)
	_, code = run("exec", "db1", "--", "sh", "-c", "echo 12345 > /proc/sys/fs/inotify/max_user_watches")
	assert.NotEqual(t, 0, code, "root in a user's node changed a setting of the host's kernel")
	now, _ := os.ReadFile("/proc/sys/fs/inotify/max_user_watches")
	assert.Equal(t, string(watches), string(now))
	var root syscall.Stat_t
	require.NoError(t, syscall.Stat("/", &root))
	_, code = run("exec", "db1", "--", "sh", "-c", fmt.Sprintf("mknod /tmp/host-disk b %d %d", unix.Major(root.Dev), unix.Minor(root.Dev)))
	assert.NotEqual(t, 0, code, "root in a user's node made a block device of the host's disk")

	// Snapshots: saved and restored from the user's namespace, exported
	// as a file of the user's.
	out, code = run("snapshot", "save", "before")
	require.Equal(t, 0, code, out)
	_, code = run("exec", "db1", "--", "sh", "-c", "echo changed > /root/db")
	require.Equal(t, 0, code)
	out, code = run("snapshot", "restore", "before")
	require.Equal(t, 0, code, out)
	made, _ = run("exec", "db1", "--", "cat", "/root/db")
	assert.Equal(t, "hello", strings.TrimSpace(made), "restored")
	archive := filepath.Join(dir, "before.tar.zst")
	out, code = run("snapshot", "export", "before", archive)
	require.Equal(t, 0, code, out)
	require.NoError(t, syscall.Stat(archive, &fi))
	assert.Equal(t, strconv.Itoa(u.UID), strconv.Itoa(int(fi.Uid)), "the exported file is the user's")

	out, code = run("destroy")
	require.Equal(t, 0, code, out)
	labtest.AssertNoLeaks(t, name, dir)
	out, code = run("snapshot", "rm", "before")
	require.Equal(t, 0, code, out)
	_, err = os.Stat(filepath.Join(dir, ".lab", "snapshots", "before"))
	assert.True(t, os.IsNotExist(err), "the snapshot's files, its nodes' root's, are gone")
}
