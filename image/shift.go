package image

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/labctl/lab/internal/fsx"
)

// Unprivileged nodes run in a user namespace whose ids 0… are host ids
// uid… and gid…: their image's files must be owned by those ids, or root in
// the node owns nothing. LXC can mount a root filesystem idmapped, but only
// a plain folder, not the overlay every node is (liblxc 5.0: "Idmapped
// rootfs currently only supports the dir storage driver"), so each image
// has a shifted copy per id range, made once and kept beside it: the same
// tree with every owner moved up by the range's start. Like images, shifted
// trees share identical files with each other by hard link.

// Shifted returns the root filesystem of rootfs's image shifted to the
// range starting at uid and gid, making it when it does not exist yet.
func Shifted(ctx context.Context, rootfs string, uid, gid uint32) (string, error) {
	out := ShiftedPath(rootfs, uid, gid)
	dir := filepath.Dir(out)
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	unlock, err := fsx.Lock(ctx, dir+".lock")
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(out); err == nil {
		return out, nil // another lab made it while this one waited
	}
	stale, _ := filepath.Glob(dir + ".tmp-*")
	for _, s := range stale {
		if err := fsx.RemoveAll(s); err != nil { // a killed lab's cp may be ending
			return "", err
		}
	}
	tmp := fmt.Sprintf("%s.tmp-%d", dir, os.Getpid())
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", err
	}
	defer RemoveTree(tmp)
	if err := fsx.Copy(ctx, "-a", rootfs, filepath.Join(tmp, "rootfs")); err != nil {
		return "", fmt.Errorf("shift %s: %w", rootfs, err)
	}
	if err := shiftTree(filepath.Join(tmp, "rootfs"), uid, gid); err != nil {
		return "", fmt.Errorf("shift %s: %w", rootfs, err)
	}
	others, _ := filepath.Glob(filepath.Join(filepath.Dir(filepath.Dir(rootfs)), "*", filepath.Base(dir), "rootfs"))
	if _, err := share(filepath.Join(tmp, "rootfs"), others); err != nil {
		return "", fmt.Errorf("shift %s: share: %w", rootfs, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	return out, nil
}

// ShiftedPath is where Shifted keeps rootfs shifted to uid and gid.
func ShiftedPath(rootfs string, uid, gid uint32) string {
	return filepath.Join(filepath.Dir(rootfs), fmt.Sprintf("shifted-%d-%d", uid, gid), "rootfs")
}

// shiftTree moves every owner below root up by uid and gid, in place. A
// change of owner clears setuid and setgid bits and file capabilities:
// both are put back as they were.
func shiftTree(root string, uid, gid uint32) error {
	caps := make([]byte, 64)
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return err
		}
		regular := st.Mode&syscall.S_IFMT == syscall.S_IFREG
		var capv []byte
		if regular {
			if n, err := unix.Lgetxattr(p, "security.capability", caps); err == nil {
				capv = append([]byte(nil), caps[:n]...)
			}
		}
		if err := os.Lchown(p, int(st.Uid+uid), int(st.Gid+gid)); err != nil {
			return err
		}
		if regular && st.Mode&(syscall.S_ISUID|syscall.S_ISGID) != 0 {
			if err := unix.Chmod(p, st.Mode&0o7777); err != nil {
				return err
			}
		}
		if capv != nil {
			if err := unix.Lsetxattr(p, "security.capability", capv, 0); err != nil {
				return fmt.Errorf("%s: file capabilities: %w", p, err)
			}
		}
		return nil
	})
}
