// Package userns runs parts of lab as root of the user's own user
// namespace, for lab without root (#20): the files of the user's images
// and nodes are owned by its subordinate ids (root in a node is the first),
// which the user can change only from a namespace that maps them. lab
// runs itself again through lxc-usernsexec (Debian's lxc: it maps the
// user's ranges with the setuid newuidmap and newgidmap, and becomes root
// in the namespace), with the name of an operation that a package
// registered in LAB_USERNS_OP; Main, first in lab's main, runs it there.
// Docker's and Podman's reexec do the same for the same reason.
package userns

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"

	"github.com/labctl/lab/host"
)

const envOp = "LAB_USERNS_OP"

// An Op runs in the namespace, as its root, with lab's arguments and
// standard input.
type Op func(args []string, stdin io.Reader) error

var (
	mu  sync.Mutex
	ops = map[string]Op{}
)

// Register names an operation (in a package's init).
func Register(name string, f Op) {
	mu.Lock()
	defer mu.Unlock()
	ops[name] = f
}

// Main runs the operation lab was run again for, and exits; it returns at
// once when lab was not.
func Main() {
	name := os.Getenv(envOp)
	if name == "" {
		return
	}
	_ = os.Unsetenv(envOp)
	mu.Lock()
	f := ops[name]
	mu.Unlock()
	if f == nil {
		fmt.Fprintf(os.Stderr, "lab: no operation %q in a user namespace\n", name)
		os.Exit(2)
	}
	if err := f(os.Args[1:], os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Map is the user's namespace: ids 0…Count-1 are the host's UID… and
// GID… (root in the user's nodes), and the user itself (User, Group) is
// Count, so its own files are reachable too.
type Map struct {
	UID, GID, Count uint32
	User, Group     int
}

// Self is the namespace of the user lab runs as (not root).
func Self() (*Map, error) {
	u, err := host.Self()
	if err != nil {
		return nil, err
	}
	uid, gid, err := u.Range()
	if err != nil {
		return nil, err
	}
	return &Map{UID: uid, GID: gid, Count: host.IDCount, User: u.UID, Group: u.GID}, nil
}

// Run runs op in the namespace with args and stdin; its error carries
// what the operation said.
func (m *Map) Run(ctx context.Context, op string, stdin io.Reader, args ...string) error {
	return m.RunWith(ctx, op, stdin, nil, args...)
}

// RunWith runs op with files open as its descriptors 3, 4…: what the user
// may open and its namespace's root may not (another namespace's
// /proc/PID/root).
func (m *Map) RunWith(ctx context.Context, op string, stdin io.Reader, files []*os.File, args ...string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := m.Command(ctx, exe, args...)
	cmd.Env = append(os.Environ(), envOp+"="+op)
	cmd.Stdin = stdin
	cmd.ExtraFiles = files
	out, err := cmd.CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("%s (as root of the user namespace): %s", op, msg)
	}
	return nil
}

func init() {
	Register("remove", func(args []string, _ io.Reader) error {
		for _, dir := range args {
			if err := os.RemoveAll(dir); err != nil {
				return err
			}
		}
		return nil
	})
}

// RemoveAll removes dirs, whoever of the namespace owns what is in them.
func (m *Map) RemoveAll(ctx context.Context, dirs ...string) error {
	if len(dirs) == 0 {
		return nil
	}
	return m.Run(ctx, "remove", nil, dirs...)
}

var (
	currentOnce sync.Once
	current     *Map
	currentErr  error
)

// Current is the namespace of the user lab runs as; nil for root, whose
// hand reaches every file as it is.
func Current() (*Map, error) {
	if os.Geteuid() == 0 {
		return nil, nil
	}
	currentOnce.Do(func() { current, currentErr = Self() })
	return current, currentErr
}

// args are lxc-usernsexec's arguments that map the namespace, up to "--".
func (m *Map) args() []string {
	return []string{"-m", fmt.Sprintf("u:0:%d:%d", m.UID, m.Count), "-m", fmt.Sprintf("g:0:%d:%d", m.GID, m.Count),
		"-m", fmt.Sprintf("u:%d:%d:1", m.Count, m.User), "-m", fmt.Sprintf("g:%d:%d:1", m.Count, m.Group), "--"}
}

// Command is a command that runs as root of the namespace.
func (m *Map) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "lxc-usernsexec", append(append(m.args(), name), args...)...)
}

// Command is a command that runs as root of the current user's namespace
// (for root: as it is).
func Command(ctx context.Context, name string, args ...string) (*exec.Cmd, error) {
	m, err := Current()
	if err != nil {
		return nil, err
	}
	if m == nil {
		return exec.CommandContext(ctx, name, args...), nil
	}
	return m.Command(ctx, name, args...), nil
}

// RemoveAll removes a tree whoever of the current user's namespace owns
// what is in it (for root: os.RemoveAll).
func RemoveAll(dir string) error {
	err := os.RemoveAll(dir)
	if err == nil || !errors.Is(err, os.ErrPermission) {
		return err
	}
	m, merr := Current()
	if m == nil || merr != nil {
		return err
	}
	return m.RemoveAll(context.Background(), dir)
}
