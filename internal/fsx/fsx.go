// Package fsx holds the ways lab reads and writes files on the host:
// reading a file that must be a regular one without ever blocking on a FIFO
// or reading a device without end, writing one atomically, and making a
// folder as another tree has it (owner, mode).
package fsx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// ReadRegular reads a regular file of at most max bytes. A FIFO is opened
// without blocking and then refused, like a device, socket or folder.
func ReadRegular(path string, max int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%s)", Kind(fi.Mode()))
	}
	if fi.Size() > max {
		return nil, fmt.Errorf("%d bytes: larger than the %d MiB lab reads", fi.Size(), max>>20)
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("larger than the %d MiB lab reads", max>>20)
	}
	return data, nil
}

// Kind names a file's type for people.
func Kind(m os.FileMode) string {
	switch {
	case m.IsRegular():
		return "a file"
	case m.IsDir():
		return "a folder"
	case m&os.ModeNamedPipe != 0:
		return "a FIFO"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeDevice != 0:
		return "a device"
	case m&os.ModeSymlink != 0:
		return "a link"
	}
	return m.Type().String()
}

// WriteAtomic writes data to path through a temporary file in the same
// folder, synced, then renamed: a reader sees the old file or the new one,
// never half of one, even after a crash.
func WriteAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// MkdirLike makes rel and its parents below root as they are below like
// (owner, mode), or root-owned 0755 where like (which may be "") has no
// such folder.
func MkdirLike(like, root, rel string) error {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	p := ""
	for _, part := range strings.Split(rel, "/") {
		p = filepath.Join(p, part)
		dst := filepath.Join(root, p)
		if _, err := os.Lstat(dst); err == nil {
			continue
		}
		mode, uid, gid := uint32(0o755), 0, 0
		var st syscall.Stat_t
		if like != "" && syscall.Stat(filepath.Join(like, p), &st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFDIR {
			mode, uid, gid = st.Mode&0o7777, int(st.Uid), int(st.Gid)
		}
		if err := os.Mkdir(dst, 0o700); err != nil {
			return err
		}
		if err := os.Lchown(dst, uid, gid); err != nil {
			return err
		}
		if err := syscall.Chmod(dst, mode); err != nil { // raw bits: sticky and setgid too
			return err
		}
	}
	return nil
}

// Copy runs cp with args. cp dies with lab, even on kill -9 (Pdeathsig,
// which fires when the thread that started it ends: it stays locked until
// cp is done), so that no copy of a killed lab goes on writing into a tree
// the next command removes or uses.
func Copy(ctx context.Context, args ...string) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd := exec.CommandContext(ctx, "cp", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("cp %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// RemoveAll removes a tree, trying again for a moment when it is still
// being written to (a copy of a killed lab that the kernel is ending).
func RemoveAll(dir string) error {
	var err error
	for i := 0; i < 20; i++ {
		if err = os.RemoveAll(dir); err == nil || !errors.Is(err, syscall.ENOTEMPTY) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
	return err
}

// Lock takes an exclusive flock on path (made if missing), waiting for
// another holder until ctx ends; the returned func releases it.
func Lock(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
