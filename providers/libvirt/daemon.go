package libvirt

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/labctl/lab/internal/spawn"
)

// ensureDaemons starts virtlogd and libvirtd when they are not running and
// we are root (machines without systemd as init, such as CI containers). It
// never starts libvirt's "default" network: lab needs none of it, and it
// would turn on IP forwarding for the whole machine.
func ensureDaemons(log io.Writer, socket string) error {
	if answers(socket) {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("libvirtd is not running (no %s) and only root can start it", socket)
	}
	if _, err := exec.LookPath("libvirtd"); err != nil {
		return fmt.Errorf("libvirtd is not installed (Debian packages libvirt-daemon-system qemu-system-x86 qemu-utils)")
	}
	if link := "/etc/libvirt/qemu/networks/autostart/default.xml"; fileExists(link) {
		if err := os.Remove(link); err == nil {
			fmt.Fprintf(log, "lab: libvirt's default network (NAT, IP forwarding) will not autostart: removed %s\n", link)
		}
	}
	fmt.Fprintln(log, "lab: libvirtd is not running: starting virtlogd and libvirtd")
	logd := filepath.Join(filepath.Dir(socket), "virtlogd-sock")
	if !answers(logd) {
		if err := daemon("virtlogd", "-d"); err != nil {
			return err
		}
	}
	// A socket left by a libvirtd that died answers nothing; libvirtd
	// replaces it.
	if err := daemon("libvirtd", "-d"); err != nil {
		return err
	}
	return waitSocket(socket)
}

// waitSocket waits for a daemon just started to answer on its socket.
func waitSocket(socket string) error {
	for i := 0; i < 200; i++ {
		if answers(socket) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("libvirtd started but %s does not answer", socket)
}

// answers tells whether a daemon listens on a Unix socket (a socket file
// alone may be left from one that died).
func answers(socket string) bool {
	c, err := net.DialTimeout("unix", socket, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// fixKVMAccess gives /dev/kvm the group and mode Debian's udev rule gives
// it (root:kvm 0660) on machines where no udev ran. libvirt checks KVM as
// the QEMU user (libvirt-qemu, in group kvm): without access it calls its
// probed capabilities stale on every domain definition and probes QEMU again
// and again, which made each define take 90 s here.
func fixKVMAccess(log io.Writer) {
	fi, err := os.Stat("/dev/kvm")
	if err != nil || os.Geteuid() != 0 {
		return
	}
	g, err := user.LookupGroup("kvm")
	if err != nil {
		return
	}
	gid, _ := strconv.Atoi(g.Gid)
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || (int(st.Gid) == gid && fi.Mode().Perm()&0o060 == 0o060) {
		return
	}
	if err := os.Chown("/dev/kvm", 0, gid); err != nil {
		return
	}
	if err := os.Chmod("/dev/kvm", 0o660); err != nil {
		return
	}
	fmt.Fprintln(log, "lab: /dev/kvm: set group kvm, mode 0660, as Debian's udev rule does (no udev on this machine)")
}

func fileExists(p string) bool { _, err := os.Lstat(p); return err == nil }

// daemon runs a command that forks a daemon and returns, outside any
// container's cgroup (see package spawn).
func daemon(name string, args ...string) error {
	return spawn.Daemon(func() error {
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
		}
		return nil
	})
}
