package labtest

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

	"github.com/stretchr/testify/require"

	"github.com/labctl/lab/internal/spawn"
)

// LXDCluster is an LXD cluster on this machine for tests (#21), as LXD's
// own test suite makes one: each member an lxd daemon with a folder of its
// own, in a network namespace of its own, on one host bridge. See
// docs/lxd.md for why each step is what it is.
type LXDCluster struct {
	Members []string // m1, m2, …
	Bridge  string   // the host bridge the members sit on
	Dir     string
	Bin     string   // where lxd and lxc are
	Env     []string // for lxc: talks to member 1 over its socket
	pids    []int
	subnet  string
}

// NewLXDCluster starts an n-member cluster on subnet (three octets, such as
// 10.97.250: the host is .1, member i is .1i) and removes every trace of it
// when t ends. Its lxd and lxc are Debian's, unpacked once (LXDBin).
func NewLXDCluster(t testing.TB, n int, subnet string) *LXDCluster {
	t.Helper()
	Integration(t)
	bin, libs := LXDBin(t)
	c := &LXDCluster{Bridge: "lab-lxdt-0", Dir: t.TempDir(), Bin: bin, subnet: subnet}
	// The instances' root (an unprivileged id) must get through to their
	// folders, as through /var/lib/lxd.
	for _, d := range []string{filepath.Dir(c.Dir), c.Dir} {
		require.NoError(t, os.Chmod(d, 0o711))
	}
	// LXD_CONF: the client's own folder, not root's ~/.config/lxc (on a
	// machine without one, lxc's first run adds a greeting to its output).
	c.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "LXD_DIR="+c.member(1), "LXD_CONF="+filepath.Join(c.Dir, "client"))
	if libs != "" {
		c.Env = append(c.Env, "LD_LIBRARY_PATH="+libs)
	}
	t.Cleanup(func() { c.remove(t) })
	sh := func(args ...string) {
		t.Helper()
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		require.NoError(t, err, "%s: %s", strings.Join(args, " "), out)
	}
	sh("ip", "link", "add", c.Bridge, "type", "bridge")
	sh("ip", "addr", "add", subnet+".1/24", "dev", c.Bridge)
	sh("ip", "link", "set", c.Bridge, "up")
	for i := 1; i <= n; i++ {
		m, ns := fmt.Sprintf("m%d", i), fmt.Sprintf("lab-lxdt-m%d", i)
		c.Members = append(c.Members, m)
		sh("ip", "netns", "add", ns)
		sh("ip", "link", "add", ns+"h", "type", "veth", "peer", "name", "eth0", "netns", ns)
		sh("ip", "link", "set", ns+"h", "master", c.Bridge, "up")
		sh("ip", "netns", "exec", ns, "ip", "addr", "add", fmt.Sprintf("%s.1%d/24", subnet, i), "dev", "eth0")
		sh("ip", "netns", "exec", ns, "ip", "link", "set", "eth0", "up")
		sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
		// A default route, as a real member has: LXD puts a network's
		// tunnels on its interface. Through .254, which no one has, so
		// nothing a member sends ever leaves the test bed.
		sh("ip", "netns", "exec", ns, "ip", "route", "add", "default", "via", subnet+".254", "dev", "eth0")
		c.spawn(t, i, ns)
	}
	c.form(t, subnet)
	// A member is offline 11 s after its last heartbeat (LXD's least is
	// 10 s; its default 20 s): a test of one waits less.
	c.Lxc(t, "config", "set", "cluster.offline_threshold", "11")
	return c
}

func (c *LXDCluster) member(i int) string { return filepath.Join(c.Dir, fmt.Sprintf("m%d", i)) }

// spawn starts member i's daemon in namespace ns: its own sysfs (LXD reads
// its bridges there) and the host's cgroups (ip netns exec would hide
// them, and systemd in the instances would die).
func (c *LXDCluster) spawn(t testing.TB, i int, ns string) {
	dir := c.member(i)
	require.NoError(t, os.MkdirAll(dir, 0o711))
	cg := filepath.Join(c.Dir, fmt.Sprintf("cg%d", i))
	// Root's subordinate ids, as the daemon sees them: LXD maps its
	// instances from root's range in /etc/subuid through newuidmap when
	// the file exists (a user lab host setup made puts one there), and
	// fails when root has none. Its own copy, in its mount namespace.
	ids := filepath.Join(c.Dir, "subid")
	require.NoError(t, os.WriteFile(ids, []byte("root:1000000:1000000000\n"), 0o644))
	script := fmt.Sprintf(`set -e; mkdir -p %[1]s; mount --rbind /sys/fs/cgroup %[1]s; umount -l /sys
mount -t sysfs sysfs /sys; mount --rbind %[1]s /sys/fs/cgroup; umount -l %[1]s
for f in /etc/subuid /etc/subgid; do if [ -e $f ]; then mount --bind %[4]s $f; fi; done
exec %[3]s/lxd --group root --logfile %[2]s/lxd.log`, cg, dir, c.Bin, ids)
	cmd := exec.Command("nsenter", "--net=/run/netns/"+ns, "unshare", "-m", "--propagation", "slave", "bash", "-c", script)
	cmd.Env = append(append([]string{}, c.Env...), "LXD_DIR="+dir)
	out, err := os.Create(filepath.Join(dir, "lxd.out"))
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	c.pids = append(c.pids, cmd.Process.Pid)
	go func() { _ = cmd.Wait(); out.Close() }()
	c.lxd(t, i, nil, "waitready", "--timeout", "60")
}

// lxd runs an lxd subcommand against member i.
func (c *LXDCluster) lxd(t testing.TB, i int, stdin *strings.Reader, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(c.Bin, "lxd"), args...)
	cmd.Env = append(append([]string{}, c.Env...), "LXD_DIR="+c.member(i))
	if stdin != nil {
		cmd.Stdin = stdin
	}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "lxd %s on m%d: %s", strings.Join(args, " "), i, out)
	return string(out)
}

// Link takes a member's link to the others down (up false) or up again:
// a member offline, as a cut cable or a dead machine looks to the rest.
func (c *LXDCluster) Link(t testing.TB, member string, up bool) {
	t.Helper()
	state := map[bool]string{true: "up", false: "down"}[up]
	ns := "lab-lxdt-" + member
	out, err := exec.Command("ip", "netns", "exec", ns, "ip", "link", "set", "eth0", state).CombinedOutput()
	require.NoError(t, err, "%s: link %s: %s", member, state, out)
	if up {
		// A link brought up again has lost its default route.
		_ = exec.Command("ip", "netns", "exec", ns, "ip", "route", "replace", "default", "via", c.subnet+".254", "dev", "eth0").Run()
	}
}

// Lxc runs lxc against the cluster (member 1) and returns its standard
// output.
func (c *LXDCluster) Lxc(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(c.Bin, "lxc"), args...)
	cmd.Env = c.Env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "lxc %s: %s%s", strings.Join(args, " "), out, stderr.String())
	return string(out)
}

// form makes member 1 the cluster and joins the others with tokens.
func (c *LXDCluster) form(t testing.TB, subnet string) {
	c.lxd(t, 1, strings.NewReader(fmt.Sprintf(`config:
  core.https_address: %s.11:8443
  images.auto_update_interval: "0"
storage_pools:
- {name: local, driver: dir}
profiles:
- name: default
  devices:
    root: {path: /, pool: local, type: disk}
cluster: {server_name: m1, enabled: true}
`, subnet)), "init", "--preseed")
	for i := 2; i <= len(c.Members); i++ {
		token := strings.TrimSpace(c.Lxc(t, "cluster", "add", c.Members[i-1], "--quiet"))
		c.lxd(t, i, strings.NewReader(fmt.Sprintf(`cluster:
  enabled: true
  server_name: m%d
  server_address: %s.1%d:8443
  cluster_token: %s
  member_config:
  - {entity: storage-pool, name: local, key: source, value: ""}
`, i, subnet, i, token)), "init", "--preseed")
	}
}

// Leaks lists what is left in the cluster: instances, images, managed
// networks, network ACLs and profiles other than default. Everything the
// test bed holds was made by a test, so all of it is a leak once the
// test's labs are destroyed.
func (c *LXDCluster) Leaks() []string {
	var out []string
	for _, q := range []struct {
		what string
		args []string
		keep func(f []string) bool
	}{
		{"instance", []string{"list", "-f", "csv", "-c", "nL"}, nil},
		{"image", []string{"image", "list", "-f", "csv", "-c", "lf"}, nil},
		{"network", []string{"network", "list", "-f", "csv"}, func(f []string) bool { return len(f) > 2 && f[2] == "YES" }},
		{"network acl", []string{"network", "acl", "list", "-f", "csv"}, nil},
		{"profile", []string{"profile", "list", "-f", "csv"}, func(f []string) bool { return f[0] != "default" }},
	} {
		cmd := exec.Command(filepath.Join(c.Bin, "lxc"), q.args...)
		cmd.Env = c.Env
		b, err := cmd.Output()
		if err != nil {
			out = append(out, fmt.Sprintf("%s: cannot list: %v", q.what, err))
			continue
		}
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if f := strings.Split(l, ","); l != "" && (q.keep == nil || q.keep(f)) {
				out = append(out, q.what+" "+l)
			}
		}
	}
	for _, p := range c.HostPorts() {
		out = append(out, "this host's port "+p)
	}
	return out
}

// HostPorts are the host's VXLAN interfaces on the test bed's bridge: a
// lab's port on one of its networks (providers/lxd/hostport.go).
func (c *LXDCluster) HostPorts() []string {
	b, err := exec.Command("ip", "-d", "-o", "link", "show", "type", "vxlan").Output()
	if err != nil {
		return []string{"cannot list: " + err.Error()}
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 1 && strings.Contains(l, " dev "+c.Bridge+" ") {
			name, _, _ := strings.Cut(f[1], ":")
			out = append(out, strings.TrimSuffix(name, "@"+c.Bridge))
		}
	}
	return out
}

// remove checks that nothing is left in the cluster, shuts every member
// down (killing what does not end), then removes the namespaces, the
// bridge and the folders.
func (c *LXDCluster) remove(t testing.TB) {
	if len(c.pids) == len(c.Members) && len(c.Members) > 0 {
		if leaks := c.Leaks(); len(leaks) > 0 {
			t.Errorf("the LXD cluster holds what a lab left:\n  %s", strings.Join(leaks, "\n  "))
		}
	}
	for i := range c.pids {
		cmd := exec.Command(filepath.Join(c.Bin, "lxd"), "shutdown", "--timeout", "30")
		cmd.Env = append(append([]string{}, c.Env...), "LXD_DIR="+c.member(i+1))
		_ = cmd.Run()
	}
	for _, pid := range c.pids {
		for k := 0; k < 50 && spawn.Alive(pid); k++ {
			time.Sleep(100 * time.Millisecond)
		}
		if spawn.Alive(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	// What a killed daemon left: its instances' monitors, its dnsmasq in
	// its namespace (which then outlives the name).
	killAll := func(out []byte, err error) {
		if err != nil {
			return
		}
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	killAll(exec.Command("pgrep", "-f", c.Dir).Output())
	for i := range c.Members {
		ns := fmt.Sprintf("lab-lxdt-m%d", i+1)
		killAll(exec.Command("ip", "netns", "pids", ns).Output())
		_ = exec.Command("ip", "netns", "del", ns).Run()
		// Gone with the namespace, unless the kernel still holds it (seen
		// after an instance failed to start): then its host end stays.
		_ = exec.Command("ip", "link", "del", ns+"h").Run()
	}
	for _, p := range c.HostPorts() {
		_ = exec.Command("ip", "link", "del", p).Run()
	}
	_ = exec.Command("ip", "link", "del", c.Bridge).Run()
}

// LXDDebs are the packages the test bed's LXD runs from: Debian's lxd and
// its client, and the libraries and tools they need that lab's own
// packages do not bring.
var LXDDebs = []string{"lxd", "lxd-client", "libdqlite0", "libraft2", "libuv1", "liblzo2-2", "squashfs-tools", "attr"}

// LXDBin returns the folders of the test bed's lxd and lxc and of their
// libraries: Debian's packages unpacked (dpkg -x) once into lab's cache,
// not installed. Installed, lxd's postinst starts a system-wide LXD
// (invoke-rc.d, with no systemd), which a test must not leave running.
func LXDBin(t testing.TB) (bin, libs string) {
	t.Helper()
	root := "/var/cache/lab/lxd-testbed"
	bin, libs = filepath.Join(root, "usr/bin"), filepath.Join(root, "usr/lib/x86_64-linux-gnu")
	if _, err := os.Stat(filepath.Join(bin, "lxd")); err == nil {
		return bin, libs
	}
	require.NoError(t, os.MkdirAll(filepath.Dir(root), 0o755))
	tmp, err := os.MkdirTemp(filepath.Dir(root), ".lxd-testbed-")
	require.NoError(t, err)
	defer os.RemoveAll(tmp)
	require.NoError(t, os.Chmod(tmp, 0o755)) // apt's sandbox user writes the .debs
	get := exec.Command("apt-get", append([]string{"download"}, LXDDebs...)...)
	get.Dir = tmp
	out, err := get.CombinedOutput()
	require.NoError(t, err, "apt-get download: %s", out)
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	require.Len(t, debs, len(LXDDebs), "apt-get download: %s", out)
	unpacked := filepath.Join(tmp, "root")
	for _, d := range debs {
		out, err := exec.Command("dpkg", "-x", d, unpacked).CombinedOutput()
		require.NoError(t, err, "dpkg -x %s: %s", d, out)
	}
	_ = os.RemoveAll(root)
	require.NoError(t, os.Rename(unpacked, root))
	return bin, libs
}
