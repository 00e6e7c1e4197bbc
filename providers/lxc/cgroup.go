package lxc

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/labctl/lab/internal/spawn"
)

// cgroupRoot is where cgroup hierarchies are mounted (a variable for tests).
var cgroupRoot = "/sys/fs/cgroup"

// userCgroup is the cgroup of the user lab runs as, in each hierarchy
// (lab without root); "" for root.
var userCgroup string

// controllerVersion tells which cgroup hierarchy has a controller: 2 for the
// unified one, 1 for a v1 hierarchy, 0 when it is nowhere. Machines run v1,
// v2, or both side by side (hybrid: v1 controllers, an empty unified tree).
func controllerVersion(ctrl string) int {
	for _, f := range []string{cgroupRoot + "/cgroup.controllers", cgroupRoot + "/unified/cgroup.controllers"} {
		if b, err := os.ReadFile(f); err == nil {
			for _, c := range strings.Fields(string(b)) {
				if c == ctrl {
					return 2
				}
			}
		}
	}
	if _, err := os.Stat(cgroupRoot + "/" + ctrl); err == nil {
		return 1
	}
	return 0
}

// cgroupLimits turns cpus and memory into LXC config items for whichever
// hierarchy holds each controller. CPUs become a CFS quota (cpus × period),
// not pinning, so nodes share every core.
func cgroupLimits(cpus int, memory int64) [][2]string {
	var out [][2]string
	const period = 100000
	if cpus > 0 {
		quota := strconv.Itoa(cpus * period)
		switch controllerVersion("cpu") {
		case 2:
			out = append(out, [2]string{"lxc.cgroup2.cpu.max", quota + " " + strconv.Itoa(period)})
		case 1:
			out = append(out,
				[2]string{"lxc.cgroup.cpu.cfs_period_us", strconv.Itoa(period)},
				[2]string{"lxc.cgroup.cpu.cfs_quota_us", quota})
		}
	}
	if memory > 0 {
		m := strconv.FormatInt(memory, 10)
		switch controllerVersion("memory") {
		case 2:
			out = append(out, [2]string{"lxc.cgroup2.memory.max", m})
		case 1:
			out = append(out, [2]string{"lxc.cgroup.memory.limit_in_bytes", m})
		}
	}
	return out
}

// RemoveCgroups removes the cgroups LXC left for a stopped container: its
// monitor's (lxc.monitor.ID, or ID-1, ID-2… when LXC found the name taken)
// and its payload's, in every hierarchy. liblxc's monitor sometimes exits
// before it can remove its own; over many runs they pile up. rmdir removes
// only an empty cgroup, so a live one is never touched.
// The names are looked up, not listed: a hierarchy's root holds every
// container's cgroups, and reading it per node was most of what a
// 100-node destroy spent in lab itself. The numbered names are listed only
// when the first of them exists.
func RemoveCgroups(id string) {
	looked := map[string]bool{} // a process is in one cgroup of each hierarchy: one look per kind is enough
	for _, d := range cgroupDirs() {
		for _, kind := range []string{"lxc.monitor.", "lxc.payload."} {
			base := d + "/" + kind + id
			if _, err := os.Lstat(base); err == nil {
				if !looked[kind] {
					looked[kind] = true
					if kind == "lxc.payload." {
						killStrays(base)
					} else {
						awaitMonitor(base)
					}
				}
				rmdirTree(base)
			}
			if _, err := os.Lstat(base + "-1"); err != nil {
				continue
			}
			more, _ := filepath.Glob(base + "-[0-9]*")
			for _, m := range more {
				rmdirTree(m)
			}
		}
	}
}

// cgroupDirs are the cgroup root and each hierarchy mounted below it, read
// once per root: they do not change while lab runs.
func cgroupDirs() []string {
	dirsMu.Lock()
	defer dirsMu.Unlock()
	if dirs, ok := dirsOf[cgroupRoot]; ok {
		return dirs
	}
	roots, _ := os.ReadDir(cgroupRoot)
	dirs := []string{cgroupRoot}
	for _, r := range roots {
		if r.IsDir() {
			dirs = append(dirs, cgroupRoot+"/"+r.Name())
		}
	}
	if userCgroup != "" { // a user's nodes' cgroups are below its own
		for i := range dirs {
			dirs[i] += "/" + userCgroup
		}
	}
	dirsOf[cgroupRoot] = dirs
	return dirs
}

var (
	dirsMu sync.Mutex
	dirsOf = map[string][]string{}
)

// killStrays ends what is left in a destroyed container's payload cgroup
// (dir and below) that runs in lab's own PID namespace, lab itself
// excepted: liblxc's attach helpers of a lab killed (SIGKILL) while it ran
// a command in the node. Such a helper waits forever for a word from the
// dead lab, parked in the container's cgroup, which then cannot be
// removed. The container's own processes are gone with it; nothing of
// another PID namespace is touched.
func killStrays(dir string) {
	own, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return
	}
	var killed []int
	for _, pid := range cgroupProcs(dir) {
		if pid == os.Getpid() {
			continue
		}
		if ns, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/pid"); err == nil && ns == own {
			if syscall.Kill(pid, syscall.SIGKILL) == nil {
				killed = append(killed, pid)
			}
		}
	}
	for i := 0; i < 200 && slices.ContainsFunc(killed, spawn.Alive); i++ {
		time.Sleep(10 * time.Millisecond)
	}
}

// awaitMonitor waits, up to monitorGrace, for the monitor of a stopped
// container to leave its cgroup (dir): the container is STOPPED a moment
// before its monitor has exited, and a cgroup with a process in it cannot
// be removed (seen: a user's lab destroy left lxc.monitor.ID behind).
// lab itself, were it still in there, does not count.
func awaitMonitor(dir string) {
	deadline := time.Now().Add(monitorGrace)
	for time.Now().Before(deadline) {
		procs := cgroupProcs(dir)
		if len(procs) == 0 || (len(procs) == 1 && procs[0] == os.Getpid()) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var monitorGrace = 5 * time.Second

// cgroupProcs lists the processes in a v1 cgroup and its children.
func cgroupProcs(dir string) []int {
	var out []int
	b, _ := os.ReadFile(dir + "/cgroup.procs")
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
			out = append(out, pid)
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, cgroupProcs(dir+"/"+e.Name())...)
		}
	}
	return out
}

// rmdirTree removes an empty cgroup and its empty children, deepest first.
func rmdirTree(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() {
			rmdirTree(dir + "/" + e.Name())
		}
	}
	_ = syscall.Rmdir(dir)
}

// liblxc moves the process that starts a container (every thread of lab)
// into the container's monitor cgroup (lxc.monitor.ID) and leaves it there.
// Then every later child of lab (dnsmasq, socat, libvirtd, the next
// container's monitor) is born in that cgroup, which cannot be removed when
// the container goes: goHome moves lab back after each start.
var (
	homeOnce sync.Once
	home     []string // lab's own cgroups, as /proc/self/cgroup said first
)

func rememberHome() {
	homeOnce.Do(func() {
		b, err := os.ReadFile("/proc/self/cgroup")
		if err == nil {
			home = strings.Split(strings.TrimSpace(string(b)), "\n")
		}
	})
}

// goHome puts lab's process back in the cgroups it started in.
func goHome() {
	pid := []byte(strconv.Itoa(os.Getpid()))
	for _, line := range home {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var dirs []string
		if parts[1] == "" { // the unified hierarchy
			dirs = []string{cgroupRoot + "/unified", cgroupRoot}
		} else {
			for _, c := range strings.Split(parts[1], ",") {
				dirs = append(dirs, cgroupRoot+"/"+strings.TrimPrefix(c, "name="))
			}
			dirs = append(dirs, cgroupRoot+"/"+strings.ReplaceAll(parts[1], "name=", ""))
		}
		for _, d := range dirs {
			if _, err := os.Stat(d + parts[2] + "/cgroup.procs"); err == nil {
				_ = os.WriteFile(d+parts[2]+"/cgroup.procs", pid, 0o644)
				break
			}
		}
	}
}
