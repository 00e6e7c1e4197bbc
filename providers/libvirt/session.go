package libvirt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"github.com/labctl/lab/helper"
	"github.com/labctl/lab/host"
	"github.com/labctl/lab/internal/userns"
	"github.com/labctl/lab/network"
	"github.com/labctl/lab/providers"
)

// VM nodes of a user that is not root (#20) run under the user's own
// libvirtd, qemu:///session, as Vagrant's libvirt provider does for its
// users: QEMU runs as the user, disks and definitions live in the user's
// folders, and nothing of it is root's but the ports. A session's QEMU
// cannot attach to a bridge itself; lab's network helper makes each port a
// tap device the user owns on the lab's bridge (op tap) and QEMU opens it
// by name (<interface type='ethernet'> with <target managed='no'/>). The
// image's VM disk is made in the user's namespace, where the image's files
// (its subordinate ids) are root's, so the VM sees them owned as they
// should be.

// Tapper makes and removes a user's VM ports (helper.Client).
type Tapper interface {
	AddTaps(ctx context.Context, lab, bridge string, ports []string) error
	DelTaps(ctx context.Context, lab string, ports []string) error
}

// session is set when the provider is a user's.
type session struct {
	taps Tapper
	ns   *userns.Map
}

// maxPorts is how many ports of a node Destroy looks for when it does not
// know the node's interfaces (a lab destroyed without its file).
const maxPorts = 8

// newSession is the provider of a user: its paths in the user's XDG
// folders, where libvirtd in session mode keeps its own.
func newSession(cfg providers.Config) (*Provider, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return nil, err
	}
	xdg := func(key, fallback string) string {
		if d := os.Getenv(key); filepath.IsAbs(d) {
			return d
		}
		return filepath.Join(home, fallback)
	}
	ns, err := userns.Current()
	if err != nil && !cfg.ReadOnly {
		return nil, err
	}
	data := filepath.Join(xdg("XDG_DATA_HOME", ".local/share"), "lab")
	runtime := os.Getenv("XDG_RUNTIME_DIR")
	if !filepath.IsAbs(runtime) {
		runtime = filepath.Join(home, ".cache") // libvirtd's own fallback
	}
	return &Provider{
		accel: cfg.Accel, log: os.Stderr, readOnly: cfg.ReadOnly,
		Paths: Paths{
			Disks:   filepath.Join(data, "libvirt"),
			Configs: filepath.Join(xdg("XDG_CONFIG_HOME", ".config"), "libvirt", "qemu"),
			Socket:  filepath.Join(runtime, "libvirt", "libvirt-sock"),
			Verdict: filepath.Join(data, "kvm-hangs"),
		},
		session: &session{taps: helper.NewClient(host.HelperPath), ns: ns},
	}, nil
}

// ensureSession starts the user's libvirtd when none answers. Like the
// one libvirt's own clients start, it exits after two idle minutes with no
// VM running.
func ensureSession(socket string) error {
	if answers(socket) {
		return nil
	}
	if _, err := exec.LookPath("libvirtd"); err != nil {
		return errors.New("libvirtd is not installed (Debian packages libvirt-daemon-system qemu-system-x86 qemu-utils)")
	}
	if err := daemon("libvirtd", "--daemon", "--timeout=120"); err != nil {
		return err
	}
	if err := waitSocket(socket); err != nil {
		return fmt.Errorf("your libvirtd (qemu:///session): %w", err)
	}
	return nil
}

// plug makes a user's node's ports before its VM starts.
func (p *Provider) plug(ctx context.Context, n providers.Node) error {
	if p.session == nil {
		return nil
	}
	for i, ifc := range n.Interfaces {
		if err := p.session.taps.AddTaps(ctx, n.Lab, ifc.Bridge, []string{providers.PortName(n.Lab, n.Name, i)}); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
	}
	return nil
}

// unplug removes them: those of its interfaces, or of any a node may have.
func (p *Provider) unplug(ctx context.Context, n providers.Node) error {
	if p.session == nil {
		return nil
	}
	var ports []string
	for i := 0; i < max(len(n.Interfaces), maxPorts); i++ {
		if name := providers.PortName(n.Lab, n.Name, i); network.LinkExists(name) {
			ports = append(ports, name)
		}
	}
	if len(ports) == 0 {
		return nil
	}
	if err := p.session.taps.DelTaps(ctx, n.Lab, ports); err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	return nil
}

// build is how the provider makes an image's VM disk: as it is for root;
// for a user, in its namespace (op libvirt-base), then handed to the user.
func (p *Provider) build(ctx context.Context, rootfs, tmp string) error {
	if p.session == nil {
		return buildBase(ctx, rootfs, tmp)
	}
	if p.session.ns == nil {
		return errors.New("VM disk: no user namespace")
	}
	return p.session.ns.Run(ctx, "libvirt-base", nil, rootfs, tmp, strconv.Itoa(int(p.session.ns.Count)))
}

// baseOp builds the disk as root of the user's namespace and gives what it
// made to the user (the namespace's uid and gid args[2]).
func baseOp(args []string, _ io.Reader) error {
	if len(args) != 3 {
		return errors.New("libvirt-base: want the root filesystem, the folder and the user's id")
	}
	id, err := strconv.Atoi(args[2])
	if err != nil {
		return err
	}
	if err := buildBase(context.Background(), args[0], args[1]); err != nil {
		return err
	}
	return filepath.Walk(args[1], func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, id, id)
	})
}

func init() { userns.Register("libvirt-base", baseOp) }
