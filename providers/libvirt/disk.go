package libvirt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/labctl/lab/internal/fsx"
	"github.com/labctl/lab/internal/userns"
)

// vmBase is a bootable disk made from a cached image: base.qcow2 (an ext4
// root filesystem, no partition table) and the kernel and initrd for direct
// kernel boot.
type vmBase struct {
	Dir, Disk, Kernel, Initrd string
}

// fileTweaks are what a root filesystem needs to boot as a VM, written
// into the disk (not into the shared image): mount the root read-write, a
// root shell on the serial console for `lab ssh`.
var fileTweaks = map[string]string{
	"/etc/fstab": "/dev/vda / ext4 defaults,noatime 0 1\n",
	"/etc/systemd/system/serial-getty@ttyS1.service.d/autologin.conf": "[Service]\nExecStart=\nExecStart=-/sbin/agetty --autologin root --keep-baud 115200,57600,38400,9600 %I $TERM\n",
}

// linkTweaks enable units: a root shell on ttyS1, the console `lab ssh`
// attaches to (ttyS0 is the boot log).
var linkTweaks = map[string]string{
	"/etc/systemd/system/getty.target.wants/serial-getty@ttyS1.service": "/lib/systemd/system/serial-getty@.service",
}

// ensureBase builds the VM disk of an image once (atomic: made aside, then
// renamed; an flock keeps two labs from building it at once) with build
// (buildBase; for a user, the same in its namespace).
func ensureBase(ctx context.Context, rootfs string, build func(ctx context.Context, rootfs, tmp string) error) (*vmBase, error) {
	dir := filepath.Join(filepath.Dir(rootfs), "vm")
	b := &vmBase{Dir: dir, Disk: filepath.Join(dir, "base.qcow2"), Kernel: filepath.Join(dir, "vmlinuz"), Initrd: filepath.Join(dir, "initrd.img")}
	if fileExists(b.Disk) {
		return b, nil
	}
	unlock, err := fsx.Lock(ctx, dir+".lock")
	if err != nil {
		return nil, err
	}
	defer unlock()
	if fileExists(b.Disk) {
		return b, nil
	}
	tmp := fmt.Sprintf("%s.tmp-%d", dir, os.Getpid())
	_ = userns.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, err
	}
	defer userns.RemoveAll(tmp)
	if err := build(ctx, rootfs, tmp); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, err
	}
	return b, nil
}

// buildBase puts an image's VM disk, kernel and initrd in tmp.
func buildBase(ctx context.Context, rootfs, tmp string) error {
	kernel, initrd, err := bootFiles(rootfs)
	if err != nil {
		return err
	}
	for src, dst := range map[string]string{kernel: "vmlinuz", initrd: "initrd.img"} {
		if err := copyFile(src, filepath.Join(tmp, dst)); err != nil {
			return err
		}
	}
	raw := filepath.Join(tmp, "base.raw")
	// A sparse 8G filesystem: nodes' overlays grow into it as they need.
	if out, err := exec.CommandContext(ctx, "mkfs.ext4", "-q", "-F", "-L", "labroot", "-d", rootfs, raw, "8G").CombinedOutput(); err != nil {
		return fmt.Errorf("mkfs.ext4 -d %s: %v: %s", rootfs, err, out)
	}
	scratch, err := os.MkdirTemp("", "lab-vm-tweaks-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	if err := tweak(ctx, raw, scratch); err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, "qemu-img", "convert", "-O", "qcow2", raw, filepath.Join(tmp, "base.qcow2")).CombinedOutput(); err != nil {
		return fmt.Errorf("qemu-img convert: %v: %s", err, out)
	}
	return os.Remove(raw)
}

// bootFiles finds the newest kernel and its initrd in an image.
func bootFiles(rootfs string) (string, string, error) {
	kernels, _ := filepath.Glob(filepath.Join(rootfs, "boot", "vmlinuz-*"))
	if len(kernels) == 0 {
		return "", "", errors.New("the image has no kernel: libvirt nodes need linux-image-amd64 (lab adds it to their images)")
	}
	sort.Strings(kernels)
	k := kernels[len(kernels)-1]
	initrd := filepath.Join(rootfs, "boot", "initrd.img-"+strings.TrimPrefix(filepath.Base(k), "vmlinuz-"))
	if !fileExists(initrd) {
		return "", "", fmt.Errorf("the image has %s but no %s", filepath.Base(k), filepath.Base(initrd))
	}
	return k, initrd, nil
}

// tweak writes fileTweaks into the filesystem image with debugfs.
func tweak(ctx context.Context, raw, tmp string) error {
	var script strings.Builder
	paths := make([]string, 0, len(fileTweaks))
	for p := range fileTweaks {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for i, p := range paths {
		src := filepath.Join(tmp, fmt.Sprintf("tweak-%d", i))
		if err := os.WriteFile(src, []byte(fileTweaks[p]), 0o644); err != nil {
			return err
		}
		// mkdir fails harmlessly when the folder exists.
		fmt.Fprintf(&script, "mkdir %s\nrm %s\nwrite %s %s\nsif %s uid 0\nsif %s gid 0\n", filepath.Dir(p), p, src, p, p, p)
	}
	for link, target := range linkTweaks {
		fmt.Fprintf(&script, "mkdir %s\nsymlink %s %s\n", filepath.Dir(link), link, target)
	}
	sf := filepath.Join(tmp, "debugfs.cmd")
	if err := os.WriteFile(sf, []byte(script.String()), 0o644); err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, "debugfs", "-w", "-f", sf, raw).CombinedOutput(); err != nil {
		return fmt.Errorf("debugfs: %v: %s", err, out)
	}
	return nil
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}
