package lxc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	golxc "github.com/lxc/go-lxc"
	"golang.org/x/sys/unix"

	"github.com/labctl/lab/providers"
)

// WriteFiles writes a node's lab files from the host, with no process in
// the node: through its init's root (/proc/PID/root), each path resolved
// inside the node (openat2 with RESOLVE_IN_ROOT, so a link the node made
// cannot lead out of it), each file written aside and renamed into place,
// left alone when it already holds the same text. Then script, if any,
// runs in the node. (A shell script doing the same starts some twenty
// processes in every node: at a hundred nodes, seconds of two cores.)
func (p *Provider) WriteFiles(ctx context.Context, n providers.Node, files map[string]string, script string) error {
	if err := p.writeFromHost(ctx, n, files); err != nil {
		return err
	}
	if script == "" {
		return nil
	}
	var stderr strings.Builder
	code, err := p.Exec(ctx, n, []string{"/bin/sh", "-c", script}, providers.ExecIO{Stderr: &stderr})
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("exit %d: %s", code, strings.TrimSpace(stderr.String()))
	}
	return nil
}

func (p *Provider) writeFromHost(ctx context.Context, n providers.Node, files map[string]string) error {
	c, err := p.container(n)
	if err != nil {
		return err
	}
	pid := c.InitPid()
	running := c.State() == golxc.RUNNING
	golxc.Release(c)
	if pid <= 0 || !running {
		return fmt.Errorf("node %s is not running", n.Name)
	}
	if p.rl != nil {
		return p.rl.write(ctx, pid, files)
	}
	root, err := unix.Open(fmt.Sprintf("/proc/%d/root", pid), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("the node's root: %w", err)
	}
	defer unix.Close(root)
	write := func() error { return writeAll(root, files) }
	own, err := p.nodeOwner(n)
	if err != nil {
		return err
	}
	if own.uid == 0 && own.gid == 0 {
		return write()
	}
	return asOwner(own, write)
}

// writeAll writes files below root, in the order of their paths.
func writeAll(root int, files map[string]string) error {
	paths := make([]string, 0, len(files))
	for f := range files {
		paths = append(paths, f)
	}
	sort.Strings(paths)
	for _, f := range paths {
		if err := writeIn(root, f, files[f]); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
	}
	return nil
}

// asOwner runs write on a thread whose filesystem ids are an unprivileged
// node's root: its overlay is mounted in its user namespace, where the
// host's root is nobody and cannot own a new file (EOVERFLOW), and what lab
// makes there must be the node's root's. The thread is never handed back:
// it ends with its goroutine, ids and all.
func asOwner(own owner, write func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		_ = unix.Setfsgid(own.gid)
		_ = unix.Setfsuid(own.uid)
		uid, _ := unix.SetfsuidRetUid(-1)
		gid, _ := unix.SetfsgidRetGid(-1)
		if uid != own.uid || gid != own.gid {
			errc <- fmt.Errorf("cannot write as the node's root (uid %d, gid %d): filesystem ids are %d, %d", own.uid, own.gid, uid, gid)
			return
		}
		errc <- write()
	}()
	return <-errc
}

// openIn opens a folder below root, resolving the path as the node would.
func openIn(root int, dir string) (int, error) {
	if dir == "" {
		dir = "."
	}
	how := &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT}
	// openat2(2): with RESOLVE_IN_ROOT a ".." walk returns EAGAIN when any
	// rename or mount on the host raced it (CI: other nodes starting), and
	// the caller may retry. A real loop of renames cannot hold it off long.
	for try := 0; ; try++ {
		fd, err := unix.Openat2(root, dir, how)
		if !errors.Is(err, unix.EAGAIN) || try == 100 {
			return fd, err
		}
		time.Sleep(time.Millisecond)
	}
}

// mkdirIn opens a folder below root, making what is missing of it.
func mkdirIn(root int, dir string) (int, error) {
	fd, err := openIn(root, dir)
	if !errors.Is(err, unix.ENOENT) {
		return fd, err
	}
	parts := strings.Split(dir, "/")
	for i := range parts {
		if parts[i] == "" {
			continue
		}
		if fd, err := openIn(root, strings.Join(parts[:i+1], "/")); err == nil {
			unix.Close(fd)
			continue
		}
		parent, err := openIn(root, strings.Join(parts[:i], "/"))
		if err != nil {
			return -1, err
		}
		err = unix.Mkdirat(parent, parts[i], 0o755)
		unix.Close(parent)
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return -1, err
		}
	}
	return openIn(root, dir)
}

// writeIn replaces one file below root unless it already holds content.
func writeIn(root int, path, content string) error {
	dir, base := filepath.Split(strings.TrimPrefix(filepath.Clean("/"+path), "/"))
	if base == "" {
		return fmt.Errorf("not a file path")
	}
	dfd, err := mkdirIn(root, strings.TrimSuffix(dir, "/"))
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	if same(dfd, base, content) {
		return nil
	}
	tmp := base + ".lab-new"
	_ = unix.Unlinkat(dfd, tmp, 0)
	fd, err := unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), tmp)
	_, werr := io.WriteString(f, content)
	if werr == nil {
		werr = f.Chmod(0o644)
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = unix.Renameat(dfd, tmp, dfd, base)
	}
	if werr != nil {
		_ = unix.Unlinkat(dfd, tmp, 0)
	}
	return werr
}

// same tells whether the regular file name in dir holds exactly content.
func same(dir int, name, content string) bool {
	fd, err := unix.Openat(dir, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() || fi.Size() != int64(len(content)) {
		return false
	}
	b, err := io.ReadAll(io.LimitReader(f, int64(len(content))+1))
	return err == nil && string(b) == content
}
