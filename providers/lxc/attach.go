package lxc

// Exec through liblxc's attach: stdin, stdout and stderr through pipes,
// the exit code from sh (liblxc reads a signal as exit 0), and an end to
// the command when the caller gives up.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	golxc "github.com/lxc/go-lxc"
	"golang.org/x/sys/unix"

	"github.com/labctl/lab/providers"
)

func (p *Provider) Exec(ctx context.Context, n providers.Node, cmd []string, eio providers.ExecIO) (int, error) {
	if len(cmd) == 0 {
		return -1, errors.New("exec: no command")
	}
	c, err := p.container(n)
	if err != nil {
		return -1, err
	}
	defer golxc.Release(c)
	if c.State() != golxc.RUNNING {
		return -1, fmt.Errorf("node %s is not running", n.Name)
	}
	opts := golxc.DefaultAttachOptions
	opts.ClearEnv = true
	mark := providers.NewExecMark()
	opts.Env = append(append(append([]string{}, providers.BaseEnv...), eio.Env...), mark)
	opts.Cwd = "/root"
	if eio.Dir != "" {
		opts.Cwd = eio.Dir
	}
	pipes, err := newAttachPipes(eio)
	if err != nil {
		return -1, err
	}
	defer pipes.close()
	opts.StdinFd, opts.StdoutFd, opts.StderrFd = pipes.fds()

	// A process killed by a signal would read as exit 0 through liblxc's
	// WEXITSTATUS: let sh turn it into 128+n.
	wrapped := append([]string{"/bin/sh", "-c", `"$@"`, "sh"}, cmd...)
	type result struct {
		code int
		err  error
	}
	res := make(chan result, 1)
	go func() {
		code, err := c.RunCommandStatus(wrapped, opts)
		res <- result{code, err}
	}()
	var r result
	select {
	case r = <-res:
	case <-ctx.Done():
		// liblxc cannot cancel an attach: end the processes it marked.
		p.killMarked(n, mark)
		select {
		case <-res:
			pipes.drain()
		case <-time.After(3 * time.Second):
		}
		return -1, ctx.Err()
	}
	pipes.drain()
	if r.err != nil {
		return -1, fmt.Errorf("node %s: exec %s: %w", n.Name, cmd[0], r.err)
	}
	if r.code < 0 {
		return -1, fmt.Errorf("node %s: exec %s: attach failed", n.Name, cmd[0])
	}
	return r.code, nil
}

// killMarked ends every process of the node carrying an exec's mark, from
// another attach, and waits for it at most a few seconds (a frozen node
// answers no attach).
func (p *Provider) killMarked(n providers.Node, mark string) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := p.container(n)
		if err != nil {
			return
		}
		defer golxc.Release(c)
		null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
		if err != nil {
			return
		}
		defer null.Close()
		opts := golxc.DefaultAttachOptions
		opts.ClearEnv = true
		opts.Env = providers.BaseEnv
		opts.StdinFd, opts.StdoutFd, opts.StderrFd = null.Fd(), null.Fd(), null.Fd()
		_, _ = c.RunCommandStatus([]string{"/bin/sh", "-c", providers.KillMarkedScript(mark)}, opts)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
}

// attachPipes connect an attached command to an ExecIO: stdin from a file,
// /dev/null or a pipe fed from the reader; stdout and stderr through pipes
// copied to the writers (or /dev/null).
type attachPipes struct {
	stdin            *os.File
	stdoutW, stderrW *os.File
	stdoutR, stderrR *os.File
	closers          []io.Closer
	copied           chan struct{}
}

func newAttachPipes(eio providers.ExecIO) (*attachPipes, error) {
	a := &attachPipes{copied: make(chan struct{}, 2)}
	var wg sync.WaitGroup
	var err error
	if a.stdin, err = inFd(eio.Stdin, &a.closers, &wg); err != nil {
		a.close()
		return nil, err
	}
	if a.stdoutW, a.stdoutR, err = outFd(eio.Stdout); err != nil {
		a.close()
		return nil, err
	}
	if a.stderrW, a.stderrR, err = outFd(eio.Stderr); err != nil {
		a.close()
		return nil, err
	}
	// Callers often give one writer for both (a buffer that must read as
	// the command wrote): the two copies take turns.
	var mu sync.Mutex
	a.copyOut(a.stdoutR, eio.Stdout, &mu)
	a.copyOut(a.stderrR, eio.Stderr, &mu)
	return a, nil
}

// turnWriter writes under a mutex shared with another.
type turnWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (t turnWriter) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.w.Write(b)
}

func (a *attachPipes) fds() (uintptr, uintptr, uintptr) {
	return a.stdin.Fd(), a.stdoutW.Fd(), a.stderrW.Fd()
}

func (a *attachPipes) copyOut(r *os.File, w io.Writer, mu *sync.Mutex) {
	if r == nil {
		a.copied <- struct{}{}
		return
	}
	go func() { _, _ = io.Copy(turnWriter{mu, w}, r); a.copied <- struct{}{} }()
}

// drain closes our copies of the write ends and waits for the output. A
// daemon started in the background may keep a pipe open: it does not wait
// for it forever.
func (a *attachPipes) drain() {
	a.stdoutW.Close()
	a.stderrW.Close()
	timeout := time.After(2 * time.Second)
	for i := 0; i < 2; i++ {
		select {
		case <-a.copied:
		case <-timeout:
			i = 2
		}
	}
	for _, r := range []*os.File{a.stdoutR, a.stderrR} {
		if r != nil {
			r.Close()
		}
	}
}

func (a *attachPipes) close() {
	for _, c := range a.closers {
		c.Close()
	}
	for _, f := range []*os.File{a.stdoutW, a.stderrW} {
		if f != nil {
			f.Close()
		}
	}
}

// inFd gives the attached command its stdin: /dev/null, a copy of a
// terminal's or pipe's descriptor, or a pipe fed from the reader (or
// regular file).
func inFd(r io.Reader, closers *[]io.Closer, wg *sync.WaitGroup) (*os.File, error) {
	if r == nil {
		f, err := os.Open(os.DevNull)
		if err != nil {
			return nil, err
		}
		*closers = append(*closers, f)
		return f, nil
	}
	// A terminal or pipe is handed over. A regular file never is:
	// liblxc's attach changes the mode of the descriptors it is given, and
	// that would change the host file (a lab's own script or source).
	//
	// It is handed over as a copy, never as descriptor 0: given 0, liblxc
	// ignores SIGINT and SIGQUIT in lab while the command runs (as
	// lxc-attach does), and Ctrl-C could not end lab exec or lab logs -f.
	if f, ok := r.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && !fi.Mode().IsRegular() {
			fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 3)
			if err != nil {
				return nil, fmt.Errorf("stdin: %w", err)
			}
			dup := os.NewFile(uintptr(fd), f.Name())
			*closers = append(*closers, dup)
			return dup, nil
		}
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	*closers = append(*closers, pr)
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(pw, r)
		pw.Close()
	}()
	return pr, nil
}

// outFd returns the write end to hand the command and the read end to copy
// from (nil when w is nil: output goes to /dev/null).
func outFd(w io.Writer) (*os.File, *os.File, error) {
	if w == nil {
		f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		return f, nil, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	return pw, pr, nil
}
