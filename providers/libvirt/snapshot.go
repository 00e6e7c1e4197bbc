package libvirt

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/labctl/lab/providers"
)

// A VM's snapshot is a copy of its qcow2 overlay (its own changes over the
// shared base disk). QEMU flushes its block layer when the domain is
// suspended, so a paused VM's overlay is consistent on the host; Pause also
// freezes the guest's filesystems through the agent first.

// SaveDisk copies the VM's overlay into dir/disk.qcow2.
func (p *Provider) SaveDisk(ctx context.Context, n providers.Node, dir string) error {
	disk, _ := p.paths(n)
	return copyDisk(ctx, disk, filepath.Join(dir, "disk.qcow2"))
}

// RestoreDisk puts a saved overlay back in place of the VM's.
func (p *Provider) RestoreDisk(ctx context.Context, n providers.Node, dir string) error {
	disk, _ := p.paths(n)
	return copyDisk(ctx, filepath.Join(dir, "disk.qcow2"), disk)
}

// TakeDisk moves the saved overlay into place (a copy across filesystems).
func (p *Provider) TakeDisk(ctx context.Context, n providers.Node, dir string) error {
	disk, _ := p.paths(n)
	if err := os.MkdirAll(filepath.Dir(disk), 0o755); err == nil && os.Rename(filepath.Join(dir, "disk.qcow2"), disk) == nil {
		return nil
	}
	return copyDisk(ctx, filepath.Join(dir, "disk.qcow2"), disk)
}

func copyDisk(ctx context.Context, src, dst string) error {
	if _, err := os.Stat(src); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp := dst + ".lab-tmp"
	out, err := exec.CommandContext(ctx, "cp", "--reflink=auto", "--sparse=always", src, tmp).CombinedOutput()
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cp %s: %v: %s", src, err, strings.TrimSpace(string(out)))
	}
	return os.Rename(tmp, dst)
}
