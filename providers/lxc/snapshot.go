package lxc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/labctl/lab/internal/fsx"
	"github.com/labctl/lab/internal/userns"
	"github.com/labctl/lab/providers"
)

// A container's snapshot is its overlay's upper layer (delta0): its own
// changes, whiteouts and xattrs included, never the image under it.
// cp --reflink=auto shares blocks where the filesystem can (btrfs, xfs).

// SaveDisk copies the container's changes into dir/delta0.
func (p *Provider) SaveDisk(ctx context.Context, n providers.Node, dir string) error {
	if p.rl != nil {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		return p.rl.ns.Run(ctx, "lxc-save", nil, filepath.Join(p.dir(n), "delta0"), filepath.Join(dir, "delta0"))
	}
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
	dst, work := filepath.Join(p.dir(n), "delta0"), filepath.Join(p.dir(n), "olwork")
	var err error
	if p.rl != nil {
		err = p.rl.ns.Run(ctx, "lxc-put", nil, src, dst, work, strconv.FormatBool(move))
	} else {
		err = putTree(ctx, src, dst, work, move)
	}
	if err != nil {
		return fmt.Errorf("node %s: restore: %w", n.Name, err)
	}
	return nil
}

// putTree puts a saved upper layer (src) in place of a node's (dst, with
// its overlay's work folder).
func putTree(ctx context.Context, src, dst, work string, move bool) error {
	for _, d := range []string{dst, work} {
		if err := removeAll(d); err != nil {
			return err
		}
	}
	if move && os.Rename(src, dst) == nil {
		return nil
	}
	return copyTree(ctx, src, dst)
}

// A user's nodes' layers are its namespace's: saved and put back from it.
func init() {
	userns.Register("lxc-save", func(args []string, _ io.Reader) error {
		if len(args) != 2 {
			return errors.New("lxc-save: want the upper layer and where to copy it")
		}
		return copyTree(context.Background(), args[0], args[1])
	})
	userns.Register("lxc-put", func(args []string, _ io.Reader) error {
		if len(args) != 4 {
			return errors.New("lxc-put: want the saved layer, the node's, its work folder and whether to move")
		}
		return putTree(context.Background(), args[0], args[1], args[2], args[3] == "true")
	})
}

func copyTree(ctx context.Context, src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return fsx.Copy(ctx, "-a", "--reflink=auto", src, dst)
}

// removeAll removes a tree (see fsx.RemoveAll).
func removeAll(dir string) error { return fsx.RemoveAll(dir) }
