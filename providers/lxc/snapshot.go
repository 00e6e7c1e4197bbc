package lxc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/labctl/lab/providers"
)

// A container's snapshot is its overlay's upper layer (delta0): its own
// changes, whiteouts and xattrs included, never the image under it.
// cp --reflink=auto shares blocks where the filesystem can (btrfs, xfs).

// SaveDisk copies the container's changes into dir/delta0.
func (p *Provider) SaveDisk(ctx context.Context, n providers.Node, dir string) error {
	return copyTree(ctx, filepath.Join(p.dir(n), "delta0"), filepath.Join(dir, "delta0"))
}

// RestoreDisk puts a saved delta0 back in place of the container's.
func (p *Provider) RestoreDisk(ctx context.Context, n providers.Node, dir string) error {
	return p.putDisk(ctx, n, dir, false)
}

// TakeDisk moves a saved delta0 into place (a copy when the snapshot is on
// another filesystem).
func (p *Provider) TakeDisk(ctx context.Context, n providers.Node, dir string) error {
	return p.putDisk(ctx, n, dir, true)
}

func (p *Provider) putDisk(ctx context.Context, n providers.Node, dir string, move bool) error {
	if err := p.checkOwner(n); err != nil {
		return err
	}
	src := filepath.Join(dir, "delta0")
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("node %s: restore: %w", n.Name, err)
	}
	dst := filepath.Join(p.dir(n), "delta0")
	for _, d := range []string{dst, filepath.Join(p.dir(n), "olwork")} {
		if err := removeAll(d); err != nil {
			return fmt.Errorf("node %s: restore: %w", n.Name, err)
		}
	}
	if move && os.Rename(src, dst) == nil {
		return nil
	}
	return copyTree(ctx, src, dst)
}

func copyTree(ctx context.Context, src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	// cp dies with lab, even on kill -9 (Pdeathsig, which fires when the
	// thread that started it ends: it stays locked until cp is done), so
	// that no copy of a killed lab goes on writing into a node's disk
	// while the next command puts it back.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd := exec.CommandContext(ctx, "cp", "-a", "--reflink=auto", src, dst)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("cp %s: %v: %s", src, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// removeAll removes a tree, trying again for a moment when it is still
// being written to (a copy of a killed lab that the kernel is ending).
func removeAll(dir string) error {
	var err error
	for i := 0; i < 20; i++ {
		if err = os.RemoveAll(dir); err == nil || !errors.Is(err, syscall.ENOTEMPTY) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
	return err
}
