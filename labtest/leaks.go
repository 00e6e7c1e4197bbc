package labtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	"github.com/labctl/lab/network"
)

// Leaks lists everything of lab name still on the machine: containers, VMs
// and their files, bridges, files in /run/lab, dnsmasq, port forwards, the
// nftables table, mounts, the state folder in dir, held image locks and
// half-built images.
func Leaks(name, dir string) []string {
	prefix := name + "_" // node ids are LAB_NODE
	var out []string
	out = append(out, leftNodes(prefix)...)
	out = append(out, leftCgroups(prefix)...)
	out = append(out, leftNetworks(name)...)
	for _, pid := range network.ForwardPIDs(name) {
		out = append(out, fmt.Sprintf("port forward (socat) pid %d", pid))
	}
	for _, pid := range network.DelayPIDs(name) {
		out = append(out, fmt.Sprintf("delay line pid %d", pid))
	}
	if b, err := os.ReadFile("/proc/mounts"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "/var/lib/lxc/"+prefix) || strings.Contains(line, "/var/cache/lab/") {
				out = append(out, "mount "+line)
			}
		}
	}
	if dir != "" {
		// destroy keeps what the user keeps: snapshots and lab test's artifacts.
		entries, _ := os.ReadDir(filepath.Join(dir, ".lab"))
		for _, e := range entries {
			if e.Name() != "snapshots" && e.Name() != "artifacts" {
				out = append(out, "state "+filepath.Join(dir, ".lab", e.Name()))
			}
		}
	}
	return append(out, leftImageBuilds()...)
}

// leftCgroups are cgroups LXC made for the lab's containers (monitor and
// payload, in any hierarchy) that are still there.
func leftCgroups(prefix string) []string {
	var out []string
	for _, kind := range []string{"lxc.monitor.", "lxc.payload."} {
		for _, pat := range []string{"/sys/fs/cgroup/*/" + kind + prefix + "*", "/sys/fs/cgroup/" + kind + prefix + "*",
			"/sys/fs/cgroup/*/lab-*/" + kind + prefix + "*"} { // a user's lab: below the user's cgroup

			found, _ := filepath.Glob(pat)
			for _, f := range found {
				out = append(out, "cgroup "+f)
			}
		}
	}
	return out
}

// leftNodes are containers and VMs (and VM files) whose id has the prefix.
func leftNodes(prefix string) []string {
	var out []string
	if entries, err := os.ReadDir("/var/lib/lxc"); err == nil {
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), prefix) {
				out = append(out, "container /var/lib/lxc/"+e.Name())
			}
		}
	}
	users, _ := filepath.Glob("/home/*/.local/share/lab/lxc/" + prefix + "*") // users' labs (lab without root)
	for _, u := range users {
		out = append(out, "container "+u)
	}
	if _, err := os.Stat("/var/run/libvirt/libvirt-sock"); err == nil {
		if b, err := exec.Command("virsh", "-c", "qemu:///system", "list", "--all", "--name").Output(); err == nil {
			for _, d := range strings.Fields(string(b)) {
				if strings.HasPrefix(d, prefix) {
					out = append(out, "libvirt domain "+d)
				}
			}
		}
	}
	if disks, _ := filepath.Glob("/var/lib/lab/libvirt/" + prefix + "*"); len(disks) > 0 {
		out = append(out, "VM files "+strings.Join(disks, " "))
	}
	// Users' VMs (qemu:///session): their definitions and disks.
	defs, _ := filepath.Glob("/home/*/.config/libvirt/qemu/" + prefix + "*.xml")
	disks, _ := filepath.Glob("/home/*/.local/share/lab/libvirt/" + prefix + "*")
	if files := append(defs, disks...); len(files) > 0 {
		out = append(out, "VM files "+strings.Join(files, " "))
	}
	return out
}

// leftNetworks are the lab's bridges (lab-NAME-N), their files and
// dnsmasq, and its nftables table.
func leftNetworks(name string) []string {
	var out []string
	bridge := regexp.MustCompile(`^lab-` + regexp.QuoteMeta(name) + `-[0-9]+$`)
	if links, err := os.ReadDir("/sys/class/net"); err == nil {
		for _, l := range links {
			if bridge.MatchString(l.Name()) {
				out = append(out, "bridge "+l.Name())
			}
		}
	}
	if files, err := os.ReadDir("/run/lab"); err == nil {
		for _, f := range files {
			if br, _, _ := strings.Cut(f.Name(), "."); bridge.MatchString(br) {
				out = append(out, "file /run/lab/"+f.Name())
			}
		}
	}
	if _, err := os.Stat("/run/lab/helper/" + name + ".uid"); err == nil {
		out = append(out, "network helper's owner record /run/lab/helper/"+name+".uid")
	}
	if b, err := os.ReadFile("/etc/lxc/lxc-usernet"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 3 && bridge.MatchString(f[2]) {
				out = append(out, "/etc/lxc/lxc-usernet line "+line)
			}
		}
	}
	confRe := regexp.MustCompile(`/run/lab/lab-` + regexp.QuoteMeta(name) + `-[0-9]+\.conf`)
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte("dnsmasq")) || !confRe.Match(b) {
			continue
		}
		stat, _ := os.ReadFile(strings.TrimSuffix(p, "cmdline") + "stat")
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			continue // exited; waiting for init to reap it
		}
		out = append(out, "process "+strings.ReplaceAll(string(b), "\x00", " ")+" ("+p+")")
	}
	if b, err := exec.Command("nft", "list", "tables").Output(); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			switch strings.TrimSpace(line) {
			case "table inet " + network.Table(name), "table inet " + network.PolicyTable(name), "table bridge " + network.Table(name),
				"table netdev " + network.DelayTable(name):
				out = append(out, "nftables "+line)
			}
		}
	}
	return out
}

// leftImageBuilds are held image build locks and half-built images.
func leftImageBuilds() []string {
	var out []string
	locks, _ := filepath.Glob("/var/cache/lab/images/.*.lock")
	for _, p := range locks {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			out = append(out, "held image lock "+p)
		} else {
			_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		}
		f.Close()
	}
	builds, _ := filepath.Glob("/var/cache/lab/images/.build-*")
	for _, b := range builds {
		out = append(out, "half-built image "+b)
	}
	return out
}
