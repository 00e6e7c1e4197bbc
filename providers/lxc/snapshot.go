package lxc

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/labctl/lab/internal/fsx"
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
	return fsx.Copy(ctx, "-a", "--reflink=auto", src, dst)
}

// removeAll removes a tree (see fsx.RemoveAll).
func removeAll(dir string) error { return fsx.RemoveAll(dir) }
