package lxc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	golxc "github.com/lxc/go-lxc"
	"golang.org/x/sys/unix"

	"github.com/labctl/lab/host"
	"github.com/labctl/lab/internal/userns"
	"github.com/labctl/lab/providers"
)

// Lab without root (#20). liblxc run by a user makes unprivileged
// containers itself: it maps the node's ids with newuidmap and newgidmap,
// asks the setuid lxc-user-nic for each veth on a lab bridge (allowed by
// /etc/lxc/lxc-usernet, which lab's network helper keeps), and makes the
// node's cgroups below the user's own, which lab joins first. What lab
// itself writes in a node's tree (its overlay's upper folder, the files of
// provisioning) belongs to root in the node, one of the user's subordinate
// ids: lab writes it from the user's namespace (package userns). The
// user's images are bootstrapped in that namespace (image.Cache.Userns),
// so they need no shifted copy.

// rootless is set up once, when the provider is made by a user.
type rootless struct {
	user *host.User
	ns   *userns.Map
}

// newRootless joins the user's cgroups and reads its id range.
func newRootless() (*rootless, error) {
	u, err := host.Self()
	if err != nil {
		return nil, err
	}
	if err := u.JoinCgroups(); err != nil {
		return nil, err
	}
	ns, err := userns.Current()
	if err != nil {
		return nil, err
	}
	userCgroup = u.CgroupName()
	return &rootless{user: u, ns: ns}, nil
}

// armOp makes an unprivileged node's upper and work folders and arms its
// boot mark, as root of the user's namespace: args are the node's folder
// and its lower layer.
func armOp(args []string, _ io.Reader) error {
	if len(args) != 2 {
		return errors.New("lxc-arm: want the node's folder and its lower layer")
	}
	for _, d := range []string{"delta0", "work"} {
		if err := os.MkdirAll(filepath.Join(args[0], d), 0o755); err != nil {
			return err
		}
	}
	return armBootedAs(filepath.Join(args[0], "delta0"), args[1], 0, 0)
}

// writeOp writes a node's lab files (a JSON object of path to text on
// stdin) below the root of its init, open as descriptor 3, as root of the
// user's namespace, which root in the node is. (The user opens it: it owns
// the node's namespace; its namespace's root does not.)
func writeOp(_ []string, stdin io.Reader) error {
	var files map[string]string
	if err := json.NewDecoder(stdin).Decode(&files); err != nil {
		return fmt.Errorf("lxc-write: %w", err)
	}
	return writeAll(3, files)
}

func init() {
	userns.Register("lxc-arm", armOp)
	userns.Register("lxc-write", writeOp)
}

// arm runs armOp in the user's namespace, once the node's root can reach
// its folder and its image through the user's folders.
func (r *rootless) arm(ctx context.Context, dir, lower string) error {
	if err := r.user.Reach(r.ns.UID, dir, lower); err != nil {
		return err
	}
	return r.ns.Run(ctx, "lxc-arm", nil, dir, lower)
}

// write runs writeOp in the user's namespace.
func (r *rootless) write(ctx context.Context, pid int, files map[string]string) error {
	b, err := json.Marshal(files)
	if err != nil {
		return err
	}
	root, err := os.OpenFile(fmt.Sprintf("/proc/%d/root", pid), unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("the node's root: %w", err)
	}
	defer root.Close()
	return r.ns.RunWith(ctx, "lxc-write", strings.NewReader(string(b)), []*os.File{root})
}

// NamesPorts: a user's veths are named by lxc-user-nic (veth<uid>_XXXX),
// not by providers.PortName.
func (p *Provider) NamesPorts() bool { return p.rl != nil }

// Ports are a running node's host-side veths: the peer (iflink) of each of
// its interfaces, read through its init's root. Empty when it is stopped.
func (p *Provider) Ports(_ context.Context, n providers.Node, count int) ([]string, error) {
	c, err := p.container(n)
	if err != nil {
		return nil, err
	}
	pid := c.InitPid()
	golxc.Release(c)
	if pid <= 0 {
		return nil, nil
	}
	var out []string
	for i := 0; i < count; i++ {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/root/sys/class/net/eth%d/iflink", pid, i))
		if err != nil {
			return nil, fmt.Errorf("node %s: eth%d: %w", n.Name, i, err)
		}
		idx, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, fmt.Errorf("node %s: eth%d: iflink %q", n.Name, i, b)
		}
		ifc, err := net.InterfaceByIndex(idx)
		if err != nil {
			return nil, fmt.Errorf("node %s: eth%d: its host side: %w", n.Name, i, err)
		}
		out = append(out, ifc.Name)
	}
	return out, nil
}
