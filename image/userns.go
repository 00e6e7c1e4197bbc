package image

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/labctl/lab/internal/shell"
	"github.com/labctl/lab/internal/userns"
)

// A user's images (Cache.Userns set, lab without root) are bootstrapped,
// finished and removed in its own user namespace.

// userCommand is the bootstrap of a user's image: mmdebstrap in the
// user's namespace. The namespace cannot reach root's .debs, nor the
// user's own as their owner: apt downloads what it needs. mmdebstrap's
// namespace maps only the user's subordinate ids, which cannot enter a
// home or cache folder of mode 0700 (Debian 12's adduser makes homes so,
// libvirtd its ~/.cache): it streams the tree as a tar, which lab's own
// namespace, where the user is mapped too, unpacks in the cache. Device
// nodes stay out, as in a tree mmdebstrap makes unprivileged: a node's
// /dev is LXC's or the VM kernel's.
func (c *Cache) userCommand(ctx context.Context, spec Spec, rootfs string) *exec.Cmd {
	args := []string{"mmdebstrap", "--mode=unshare", "--variant=minbase", "--format=tar", "--skip=download/empty"}
	if len(spec.Packages) > 0 {
		args = append(args, "--include="+strings.Join(spec.Packages, ","))
	}
	args = append(args, spec.Suite, "-", spec.Mirror)
	unpack := c.Userns.Command(ctx, "tar", "-C", rootfs, "--numeric-owner", "--xattrs", "--xattrs-include=*", "--exclude=./dev/*", "-xpf", "-")
	quote := func(argv []string) string {
		q := make([]string, len(argv))
		for i, a := range argv {
			q[i] = shell.Quote(a)
		}
		return strings.Join(q, " ")
	}
	script := "set -o pipefail; " + quote(args) + " | " + quote(unpack.Args)
	return exec.CommandContext(ctx, "bash", "-c", script)
}

// removeTree removes a tree of the cache: for a user, from its namespace
// (the tree's files are its subordinate ids').
func (c *Cache) removeTree(dir string) error {
	if c.Userns == nil {
		return RemoveTree(dir)
	}
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return c.Userns.RemoveAll(context.Background(), dir)
}

// finish runs finish on a bootstrapped tree: for a user, in its namespace.
func (c *Cache) finish(ctx context.Context, rootfs string) error {
	if c.Userns == nil {
		return finish(rootfs)
	}
	return c.Userns.Run(ctx, "image-finish", nil, rootfs)
}

func init() {
	userns.Register("image-finish", func(args []string, _ io.Reader) error {
		if len(args) != 1 {
			return errors.New("image-finish: want the root filesystem")
		}
		return finish(args[0])
	})
}
