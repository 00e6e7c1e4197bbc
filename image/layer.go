package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/labctl/lab/internal/fsx"
)

// Layers. Every image of a provider starts with the same packages, its base
// (init, network tools, a guest agent), and dpkg's configure step is most of
// a bootstrap: building each role's image from scratch configured the base
// again for every role. An image with packages beyond its base is built as a
// layer instead:
//
//  1. the base's image is taken from the cache, or bootstrapped once;
//  2. the role's packages are installed over it by apt in a chroot whose
//     root is an overlay (the base below, a new folder above), inside a
//     mount and PID namespace of its own, so nothing it mounts or starts
//     outlives it and the base never changes;
//  3. the image is a copy of the base's tree made of hard links (cp -al),
//     with the overlay's upper folder applied over it: new and changed
//     files moved in, deleted ones (whiteouts) removed.
//
// Images stay whole trees, so nodes, snapshots and VM disks see one folder
// as before, and a layer costs on disk only what it adds. Nothing ever writes
// into a file of the copy: changes replace a link by a new file.

// layerTag names the layer's builder process (for cleanStale).
const layerTag = "lab-image-layer"

// layerBase is the spec of the image spec is built over, if it has one and
// this host can build layers.
func layerBase(spec Spec) (Spec, bool) {
	if len(spec.Base) == 0 || len(spec.Base) >= len(spec.Packages) {
		return Spec{}, false
	}
	for _, tool := range []string{"mmdebstrap", "unshare", "chroot", "cp"} {
		if _, err := exec.LookPath(tool); err != nil {
			return Spec{}, false
		}
	}
	return Spec{Suite: spec.Suite, Mirror: spec.Mirror, Packages: spec.Base}.Normalize(), true
}

// layerScript installs packages ($5…) in a chroot over an overlay of $1
// (lower), $2 (upper), $3 (work) at $4. It runs as PID 1 of its own PID
// namespace with a private mount namespace. /dev is a tmpfs with the few
// devices package scripts use, so nothing they write reaches the host's
// /dev; policy-rc.d (put in the upper folder beforehand) keeps services
// from starting. The base's package lists are used as they are; when the
// mirror has moved on since, the lists are updated and the install tried
// once more.
const layerScript = `set -eu
lower=$1 upper=$2 work=$3 root=$4
shift 4
mount -t overlay overlay -o "lowerdir=$lower,upperdir=$upper,workdir=$work,redirect_dir=off,metacopy=off,index=off" "$root"
mount -t proc proc "$root/proc"
mount -t sysfs -o ro sysfs "$root/sys"
mount -t tmpfs -o mode=755,size=4m tmpfs "$root/dev"
for d in null zero full random urandom tty; do
  touch "$root/dev/$d"
  mount --bind "/dev/$d" "$root/dev/$d"
done
mkdir "$root/dev/pts" "$root/dev/shm"
ln -s /proc/self/fd "$root/dev/fd"
if [ -e /etc/resolv.conf ]; then mount --bind /etc/resolv.conf "$root/etc/resolv.conf"; fi
install() {
  chroot "$root" apt-get install -y -q --no-install-recommends -o Dpkg::Use-Pty=0 "$@"
}
if ! install "$@"; then
  echo "I: installing over the base failed: updating the package lists and trying once more"
  chroot "$root" apt-get update -q
  install "$@"
fi
`

// buildLayer builds spec into tmp/rootfs as a layer over base's image.
func (c *Cache) buildLayer(ctx context.Context, key string, spec, baseSpec Spec, tmp string, logf io.Writer) error {
	base, err := c.Ensure(ctx, baseSpec, c.logf)
	if err != nil {
		return fmt.Errorf("base image %s: %w", baseSpec.Key(), err)
	}
	in := map[string]bool{}
	for _, p := range base.Spec.Packages {
		in[p] = true
	}
	var extra []string
	for _, p := range spec.Packages {
		if !in[p] {
			extra = append(extra, p)
		}
	}
	for _, p := range []string{base.RootFS, tmp} {
		if strings.ContainsAny(p, ",:\\") {
			return fmt.Errorf("%s: an overlay cannot name a folder with ',', ':' or '\\'", p)
		}
	}
	c.log(key, "building over %s: apt-get install %s", base.Key, strings.Join(extra, " "))
	upper, work, merged := filepath.Join(tmp, "upper"), filepath.Join(tmp, "work"), filepath.Join(tmp, "merged")
	for _, d := range []string{work, merged} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := c.prepareUpper(base, upper); err != nil {
		return fmt.Errorf("prepare the layer: %w", err)
	}
	args := append([]string{"--mount", "--pid", "--kill-child", "--propagation", "private", "--",
		"sh", "-c", layerScript, layerTag, base.RootFS, upper, work, merged}, extra...)
	if err := c.run(key, exec.CommandContext(ctx, "unshare", args...), logf, filepath.Join(tmp, "builder.pgid")); err != nil {
		return fmt.Errorf("apt-get install in a chroot over %s: %w", base.Key, err)
	}
	if err := c.collectDebs(upper); err != nil {
		return err
	}
	for _, own := range []string{"var/cache/apt", "var/lib/apt/lists", "usr/sbin/policy-rc.d", "etc/resolv.conf", "run", "tmp"} {
		if err := os.RemoveAll(filepath.Join(upper, own)); err != nil {
			return err
		}
	}
	t := time.Now()
	rootfs := filepath.Join(tmp, "rootfs")
	if err := os.RemoveAll(rootfs); err != nil {
		return err
	}
	if err := fsx.Copy(ctx, "-a", "-l", base.RootFS, rootfs); err != nil {
		return err
	}
	if err := applyUpper(upper, rootfs); err != nil {
		return fmt.Errorf("apply the layer: %w", err)
	}
	c.log(key, "layer applied over a linked copy of %s in %.1fs", base.Key, time.Since(t).Seconds())
	for _, d := range []string{upper, work, merged} {
		if err := RemoveTree(d); err != nil {
			return err
		}
	}
	return nil
}

// prepareUpper puts into the upper folder what the install needs: the
// base's package lists and the cached .debs (hard links), a policy-rc.d,
// and a resolv.conf to mount the host's over. Folders are made with the
// base's owners and modes, which the merged tree shows.
func (c *Cache) prepareUpper(base *Image, upper string) error {
	lists := filepath.Join(upper, "var/lib/apt/lists")
	archives := filepath.Join(upper, "var/cache/apt/archives")
	for _, rel := range []string{"var/lib/apt/lists", "var/cache/apt/archives", "usr/sbin", "etc"} {
		if err := fsx.MkdirLike(base.RootFS, upper, rel); err != nil {
			return err
		}
	}
	linkAll(filepath.Join(filepath.Dir(base.RootFS), "lists"), lists, func(string) bool { return true })
	linkAll(c.debDir(), archives, func(n string) bool { return strings.HasSuffix(n, ".deb") })
	if err := os.WriteFile(filepath.Join(upper, "usr/sbin/policy-rc.d"), []byte("#!/bin/sh\nexit 101\n"), 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(upper, "etc/resolv.conf"), nil, 0o644)
}

// collectDebs keeps the .debs the install downloaded in the shared cache.
func (c *Cache) collectDebs(upper string) error {
	if err := os.MkdirAll(c.debDir(), 0o755); err != nil {
		return err
	}
	linkAll(filepath.Join(upper, "var/cache/apt/archives"), c.debDir(), func(n string) bool { return strings.HasSuffix(n, ".deb") })
	return nil
}

// linkAll hard-links the regular files of src that keep wants into dst,
// leaving any dst already has; a file that cannot be linked is skipped
// (what it would have saved is a download or an update).
func linkAll(src, dst string, keep func(name string) bool) {
	entries, _ := os.ReadDir(src)
	for _, e := range entries {
		if e.Type().IsRegular() && keep(e.Name()) {
			_ = os.Link(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name()))
		}
	}
}

// keepLists moves the package lists a bootstrap kept out of its tree, to
// dst beside it: images carry no lists (nodes never run apt), layers over
// the image install from them.
func keepLists(rootfs, dst string) error {
	src := filepath.Join(rootfs, "var/lib/apt/lists")
	entries, err := os.ReadDir(src)
	if err != nil {
		return nil // a builder that kept none
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for _, e := range entries {
		if e.Type().IsRegular() && e.Name() != "lock" {
			if err := os.Rename(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// applyUpper applies an overlay's upper folder over root, a tree of hard
// links to the overlay's lower folder: whiteouts remove, files and links
// are moved in (replacing a link, never writing through it), folders take
// the upper's owner, mode and times, and an opaque folder loses what the
// lower had in it. The overlay's own extended attributes are dropped.
func applyUpper(upper, root string) error {
	type dir struct {
		path string
		st   syscall.Stat_t
	}
	var dirs []dir
	err := filepath.WalkDir(upper, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(upper, p)
		if err != nil || rel == "." {
			return err
		}
		dst := filepath.Join(root, rel)
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return err
		}
		switch {
		case st.Mode&syscall.S_IFMT == syscall.S_IFCHR && st.Rdev == 0: // a whiteout
			return os.RemoveAll(dst)
		case d.IsDir():
			if fi, err := os.Lstat(dst); err == nil && (!fi.IsDir() || isOpaque(p)) {
				if err := os.RemoveAll(dst); err != nil {
					return err
				}
			}
			if err := os.Mkdir(dst, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
			dirs = append(dirs, dir{dst, st})
			return nil
		default:
			if err := os.RemoveAll(dst); err != nil {
				return err
			}
			if err := os.Rename(p, dst); err != nil {
				return err
			}
			return dropOverlayXattrs(dst)
		}
	})
	if err != nil {
		return err
	}
	// Folders last, deepest first: adding entries changed their times.
	for i := len(dirs) - 1; i >= 0; i-- {
		d := dirs[i]
		if err := os.Lchown(d.path, int(d.st.Uid), int(d.st.Gid)); err != nil {
			return err
		}
		if err := os.Chmod(d.path, os.FileMode(d.st.Mode&0o777)|modeBits(d.st.Mode)); err != nil {
			return err
		}
		ts := []unix.Timespec{unix.NsecToTimespec(d.st.Atim.Nano()), unix.NsecToTimespec(d.st.Mtim.Nano())}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, d.path, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
	}
	return nil
}

// modeBits turns setuid, setgid and sticky bits of a stat mode into Go's.
func modeBits(m uint32) os.FileMode {
	var out os.FileMode
	if m&syscall.S_ISUID != 0 {
		out |= os.ModeSetuid
	}
	if m&syscall.S_ISGID != 0 {
		out |= os.ModeSetgid
	}
	if m&syscall.S_ISVTX != 0 {
		out |= os.ModeSticky
	}
	return out
}

func isOpaque(dir string) bool {
	buf := make([]byte, 8)
	n, err := unix.Lgetxattr(dir, "trusted.overlay.opaque", buf)
	return err == nil && n == 1 && buf[0] == 'y'
}

// dropOverlayXattrs removes the trusted.overlay.* attributes overlayfs set
// on a copied-up file: in a lower folder they would mean something.
func dropOverlayXattrs(path string) error {
	size, err := unix.Llistxattr(path, nil)
	if err != nil || size == 0 {
		return nil
	}
	buf := make([]byte, size)
	n, err := unix.Llistxattr(path, buf)
	if err != nil {
		return nil
	}
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if strings.HasPrefix(name, "trusted.overlay.") {
			if err := unix.Lremovexattr(path, name); err != nil {
				return fmt.Errorf("%s: remove %s: %w", path, name, err)
			}
		}
	}
	return nil
}
