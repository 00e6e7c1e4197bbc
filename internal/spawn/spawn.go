// Package spawn keeps the processes lab leaves running (dnsmasq, socat,
// delay lines, libvirtd) out of the cgroups of the containers it starts.
//
// Starting a container, liblxc moves the calling process, every thread of
// lab, into that container's monitor cgroup (lxc.monitor.ID) and leaves it
// there; the LXC provider moves lab back when the start returns. A child
// lab forks in between is born in the monitor cgroup and stays there: the
// cgroup outlives the container and a daemon (libvirtd, then every VM it
// runs) lives in a cgroup named after a container that is gone. So the
// code that moves lab holds Moving, and code that starts a process meant
// to outlive the lab command holds Daemon, which waits until no start is
// under way and lab is home.
package spawn

import (
	"os"
	"strconv"
	"strings"
	"sync"
)

var mu sync.RWMutex

// Moving runs f, which may move lab's process into another cgroup, and
// must move it back before it returns. Any number run at once.
func Moving(f func() error) error {
	mu.RLock()
	defer mu.RUnlock()
	return f()
}

// Daemon runs f, which starts a process meant to outlive this call, when
// no Moving call is under way.
func Daemon(f func() error) error {
	mu.Lock()
	defer mu.Unlock()
	return f()
}

// Alive tells whether pid runs; a zombie (exited, not yet reaped by its
// parent, often init) counts as gone.
func Alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}
