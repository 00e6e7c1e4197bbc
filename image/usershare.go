package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Root's cache is the shared cache of a host's users (#20). A user's nodes
// need their image owned by the user's subordinate ids, so no user can use
// root's tree as it is, and only root can shift it. Once a lab group
// exists (lab host setup --user), root keeps beside each image it uses the
// image's tree as a tar (sharedFile, mode 0640, group lab): a user that
// lacks an image unpacks root's in its own namespace, in seconds, instead
// of bootstrapping it for minutes. A user trusts only files that root owns
// in folders that only root can write: no member of the group can slip
// another member an image.

// sharedFile is the shared form of an image, in its folder of root's cache.
const sharedFile = "rootfs.tar.zst"

// shareWithUsers writes img's shared form when it has none. A failure is the
// image's own lab's to report, not a reason to stop it: users then build
// their own.
func (c *Cache) shareWithUsers(ctx context.Context, img *Image) error {
	dst := filepath.Join(c.imageDir(img.Key), sharedFile)
	if _, err := os.Lstat(dst); err == nil {
		return nil
	}
	start := time.Now()
	tmp := fmt.Sprintf("%s.tmp-%d", dst, os.Getpid())
	defer os.Remove(tmp)
	if err := PackTree(ctx, img.RootFS, tmp); err != nil {
		return fmt.Errorf("image %s: share with users: %w", img.Key, err)
	}
	if err := os.Chown(tmp, 0, c.ShareGID); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o640); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return err
	}
	c.log(img.Key, "shared with the lab group's users in %.1fs", time.Since(start).Seconds())
	return nil
}

// PackTree writes the tree rootfs as a tar.zst at dst: owners as numbers,
// extended attributes kept, /dev's entries left out (a node's /dev is its
// container manager's). It is an image's shared form, and LXD's rootfs.
func PackTree(ctx context.Context, rootfs, dst string) error {
	cmd := exec.CommandContext(ctx, "bash", "-c",
		`set -o pipefail; tar -C "$1" --numeric-owner --xattrs --xattrs-include='*' --exclude=./dev/* -cf - . | zstd -q -f -T0 -1 -o "$2"`,
		"pack", rootfs, dst)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pack %s: %w: %s", rootfs, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// SharedForm is the path of the shared form of the image whose tree is
// rootfs (it may not exist).
func SharedForm(rootfs string) string { return filepath.Join(filepath.Dir(rootfs), sharedFile) }

// unpackShared fills rootfs from root's shared cache when it can. An
// unpack that fails leaves rootfs empty for the user's own bootstrap.
func (c *Cache) unpackShared(ctx context.Context, key, rootfs string) (bool, error) {
	ok, err := c.fromShared(ctx, key, rootfs)
	switch {
	case ctx.Err() != nil:
		return false, ctx.Err()
	case ok:
		c.log(key, "unpacked from root's shared cache %s", c.Shared)
		return true, nil
	case err == nil:
		return false, nil
	}
	c.log(key, "%v; bootstrapping it instead", err)
	if err := c.removeTree(rootfs); err != nil {
		return false, err
	}
	return false, os.MkdirAll(rootfs, 0o755)
}

// fromShared fills rootfs from the shared form of image key in root's
// cache (c.Shared), unpacked in the user's namespace. It reports false
// when there is none this user can trust.
func (c *Cache) fromShared(ctx context.Context, key, rootfs string) (bool, error) {
	if c.Shared == "" || c.Userns == nil {
		return false, nil
	}
	path := filepath.Join(c.Shared, "images", key, sharedFile)
	f, err := openTrusted(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		c.log(key, "not using %s: %v", path, err)
		return false, nil
	}
	defer f.Close()
	zstd := exec.CommandContext(ctx, "zstd", "-q", "-dc")
	zstd.Stdin = f
	var zerr, terr bytes.Buffer
	zstd.Stderr = &zerr
	tar := c.Userns.Command(ctx, "tar", "-C", rootfs, "--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpf", "-")
	tar.Stderr = &terr
	if tar.Stdin, err = zstd.StdoutPipe(); err != nil {
		return false, err
	}
	if err := zstd.Start(); err != nil {
		return false, err
	}
	terrRun := tar.Run()
	zerrRun := zstd.Wait()
	if terrRun != nil || zerrRun != nil {
		return false, fmt.Errorf("image %s: unpack %s: %s %s", key, path,
			strings.TrimSpace(zerr.String()+" "+terr.String()), errors.Join(zerrRun, terrRun))
	}
	return true, nil
}

// openTrusted opens path only if root owns it and every folder above it,
// and none of them is writable by anyone else (but a sticky folder like
// /tmp, where others cannot rename or remove what is root's): what a
// member of the lab group could have put or swapped there is refused.
func openTrusted(path string) (*os.File, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("%s: not an absolute path", path)
	}
	for dir := filepath.Dir(path); ; dir = filepath.Dir(dir) {
		if err := trustedDir(dir); err != nil {
			return nil, err
		}
		if dir == "/" {
			break
		}
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s: not a regular file", path)
	}
	if err == nil {
		err = rootOwned(path, fi, 0o022)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// trustedDir checks a folder (not a link) of root's that only root can
// write in, or a sticky one like /tmp, where others cannot rename or remove
// what is root's.
func trustedDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s: not a folder", dir)
	}
	notWritable := os.FileMode(0o022)
	if fi.Mode()&os.ModeSticky != 0 && fi.Mode().Perm()&0o002 != 0 {
		notWritable = 0
	}
	return rootOwned(dir, fi, notWritable)
}

// rootOwned checks that root owns path and none of notWritable's bits is
// set.
func rootOwned(path string, fi os.FileInfo, notWritable os.FileMode) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid != 0 {
		return fmt.Errorf("%s: not root's", path)
	}
	if fi.Mode().Perm()&notWritable != 0 {
		return fmt.Errorf("%s: writable by others than root (mode %v)", path, fi.Mode().Perm())
	}
	return nil
}
