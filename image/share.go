package image

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Images share their base: a new image's files that are the same as a
// built image's at the same path (same bytes, mode, owner and time, no
// extended attributes such as file capabilities) become hard links to that
// image's files. Every image of a suite starts from the same bootstrap, so
// disk use is the base once plus what each package set adds.
//
// Only the new tree changes, before it is renamed into place: images in use
// are lower layers of mounted overlays, which must not change under them.
// (util-linux hardlink(1) does the same over whole trees but may replace
// either file of a pair, so it is not used.) Nothing writes into a built
// image: nodes write to their own upper layers.

// share links the files of rootfs to the same files of the built images
// others, and returns the bytes it saved.
func share(rootfs string, others []string) (int64, error) {
	if len(others) == 0 {
		return 0, nil
	}
	var saved int64
	buf1, buf2 := make([]byte, 64<<10), make([]byte, 64<<10)
	err := filepath.WalkDir(rootfs, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(rootfs, path)
		if err != nil {
			return err
		}
		st, ok := statOf(path)
		if !ok || st.Size == 0 || st.Nlink != 1 || hasXattrs(path) {
			return nil
		}
		for _, o := range others {
			op := filepath.Join(o, rel)
			ost, ok := statOf(op)
			if !ok || !sameMeta(st, ost) || hasXattrs(op) {
				continue
			}
			same, err := sameBytes(path, op, buf1, buf2)
			if err != nil || !same {
				continue
			}
			tmp := path + ".lab-link"
			if err := os.Link(op, tmp); err != nil {
				return nil // another filesystem, or a limit: keep the copy
			}
			if err := os.Rename(tmp, path); err != nil {
				_ = os.Remove(tmp)
				return err
			}
			saved += st.Blocks * 512
			return nil
		}
		return nil
	})
	return saved, err
}

func statOf(path string) (*syscall.Stat_t, bool) {
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return nil, false
	}
	return &st, true
}

func sameMeta(a, b *syscall.Stat_t) bool {
	return a.Size == b.Size && a.Mode == b.Mode && a.Uid == b.Uid && a.Gid == b.Gid &&
		a.Mtim == b.Mtim && a.Dev == b.Dev && a.Ino != b.Ino
}

func hasXattrs(path string) bool {
	n, err := syscall.Listxattr(path, nil)
	return err != nil || n > 0
}

func sameBytes(a, b string, buf1, buf2 []byte) (bool, error) {
	fa, err := os.Open(a)
	if err != nil {
		return false, err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return false, err
	}
	defer fb.Close()
	for {
		n1, err1 := io.ReadFull(fa, buf1)
		n2, err2 := io.ReadFull(fb, buf2)
		if n1 != n2 || !bytes.Equal(buf1[:n1], buf2[:n2]) {
			return false, nil
		}
		end1 := errors.Is(err1, io.EOF) || errors.Is(err1, io.ErrUnexpectedEOF)
		end2 := errors.Is(err2, io.EOF) || errors.Is(err2, io.ErrUnexpectedEOF)
		if end1 || end2 {
			return end1 && end2, nil
		}
		if err1 != nil {
			return false, err1
		}
		if err2 != nil {
			return false, err2
		}
	}
}

// Usage is how much of an image's disk is its own and how much it shares
// with other images.
type Usage struct {
	Own, Shared int64
}

// Usage reads the disk use of every built image: a file whose inode is in
// another image too is shared.
func (c *Cache) Usage() (map[string]Usage, error) {
	imgs, err := c.List()
	if err != nil {
		return nil, err
	}
	type inode struct{ dev, ino uint64 }
	owners := map[inode]map[string]bool{}
	blocks := map[inode]int64{}
	for _, img := range imgs {
		err := filepath.WalkDir(img.RootFS, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			var st syscall.Stat_t
			if syscall.Lstat(path, &st) != nil {
				return nil
			}
			k := inode{uint64(st.Dev), st.Ino}
			if owners[k] == nil {
				owners[k] = map[string]bool{}
			}
			owners[k][img.Key] = true
			blocks[k] = st.Blocks * 512
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	out := map[string]Usage{}
	for k, set := range owners {
		for key := range set {
			u := out[key]
			if len(set) > 1 {
				u.Shared += blocks[k]
			} else {
				u.Own += blocks[k]
			}
			out[key] = u
		}
	}
	return out, nil
}
