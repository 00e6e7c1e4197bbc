package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labctl/lab/image"
	"github.com/labctl/lab/labtest"
	"github.com/labctl/lab/providers/libvirt"
)

// plainQEMU boots the VM disk lab made, with plain qemu under TCG and the
// CPU, machine and size lab gives its VMs, and returns the time to a login
// prompt on the serial console.
func plainQEMU(b *testing.B, vmDir string) time.Duration {
	dir := b.TempDir()
	overlay, serial := filepath.Join(dir, "node.qcow2"), filepath.Join(dir, "serial.log")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-b", filepath.Join(vmDir, "base.qcow2"), "-F", "qcow2", overlay).CombinedOutput(); err != nil {
		b.Fatalf("qemu-img: %v: %s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", "-machine", "q35,accel=tcg", "-cpu", "max", "-smp", "2", "-m", "768",
		"-kernel", filepath.Join(vmDir, "vmlinuz"), "-initrd", filepath.Join(vmDir, "initrd.img"),
		"-append", "root=/dev/vda rw console=ttyS0 net.ifnames=0 systemd.show_status=0",
		"-drive", "file="+overlay+",if=virtio,format=qcow2,cache=unsafe",
		"-serial", "file:"+serial, "-display", "none", "-nic", "none", "-no-reboot")
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	for time.Since(start) < 5*time.Minute {
		if data, _ := os.ReadFile(serial); strings.Contains(string(data), "login:") {
			return time.Since(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Fatal("plain qemu: no login prompt in 5 minutes")
	return 0
}

// BenchmarkVMUp reports a libvirt node's lab up (to running, addressed and
// answering through its agent) next to the same disk booted by plain qemu
// in the same run, both under TCG.
func BenchmarkVMUp(b *testing.B) {
	labtest.Integration(b)
	l := labtest.New(b, "bench-vm", map[string]string{"lab.yaml": `name: bench-vm
networks: [{name: lan, subnet: 10.97.202.0/24}]
defaults: {accel: tcg}
nodes:
  - {role: vm, provider: libvirt, cpus: 2, memory: 768M}
`})
	l.MustRun("up") // warms the image and its VM disk
	l.MustRun("destroy")
	key := image.Spec{Suite: "bookworm", Packages: libvirt.BasePackages}.Key()
	vmDir := filepath.Join("/var/cache/lab/images", key, "vm")
	var plains, ups []time.Duration
	for i := 0; i < b.N; i++ {
		plains = append(plains, plainQEMU(b, vmDir))
		t := time.Now()
		l.MustRun("up")
		ups = append(ups, time.Since(t))
		l.MustRun("destroy")
	}
	p, u := median(plains), median(ups)
	b.ReportMetric(p.Seconds(), "qemu-s")
	b.ReportMetric(u.Seconds(), "up-s")
	b.ReportMetric(u.Seconds()/p.Seconds(), "up/qemu")
	b.Logf("VM under TCG: plain qemu to a login prompt %.1fs; lab up to running and reachable %.1fs (%.2fx, goal ≤1.1x)", p.Seconds(), u.Seconds(), u.Seconds()/p.Seconds())
}

// BenchmarkVMUpAsUser is BenchmarkVMUp run by a user that is not root: its
// VM under its own libvirtd (qemu:///session), on the helper's tap, next
// to the user's VM disk booted by plain qemu in the same run.
func BenchmarkVMUpAsUser(b *testing.B) {
	u := labtest.NewUser(b, "labv")
	u.Setup()
	dir := filepath.Join(u.Home, "bench")
	u.Write(dir, map[string]string{"lab.yaml": `name: bvuser
networks: [{name: lan, subnet: 10.97.204.0/24}]
defaults: {accel: tcg}
nodes:
  - {role: vm, provider: libvirt, cpus: 2, memory: 768M}
`})
	run := func(args ...string) {
		b.Helper()
		if out, code := u.Lab(dir, args...); code != 0 {
			b.Fatalf("lab %s as %s: exit %d\n%s", strings.Join(args, " "), u.Name, code, out)
		}
	}
	b.Cleanup(u.StopSessionDaemons)
	b.Cleanup(func() { u.Lab(dir, "destroy") })
	run("up") // the user's image and its VM disk, once
	run("destroy")
	key := image.Spec{Suite: "bookworm", Packages: libvirt.BasePackages}.Key()
	vmDir := filepath.Join(u.Home, ".cache", "lab", "images", key, "vm")
	var plains, ups []time.Duration
	for i := 0; i < b.N; i++ {
		plains = append(plains, plainQEMU(b, vmDir))
		t := time.Now()
		run("up")
		ups = append(ups, time.Since(t))
		run("destroy")
	}
	p, up := median(plains), median(ups)
	b.ReportMetric(p.Seconds(), "qemu-s")
	b.ReportMetric(up.Seconds(), "up-s")
	b.ReportMetric(up.Seconds()/p.Seconds(), "up/qemu")
	b.Logf("VM as a user under TCG: plain qemu to a login prompt %.1fs; lab up to running and reachable %.1fs (%.2fx)", p.Seconds(), up.Seconds(), up.Seconds()/p.Seconds())
}
