// Package lxc runs lab nodes as LXC system containers with systemd as init,
// through liblxc (go-lxc): unprivileged (in a user namespace, root in the
// node an unprivileged id on the host) unless the lab file says privileged.
// Each node is a copy-on-write overlay on a cached image: its own changes
// live in PATH/ID/delta0, the image is shared.
package lxc

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/labctl/lab/image"
	"github.com/labctl/lab/internal/fsx"
	"github.com/labctl/lab/internal/spawn"
	"github.com/labctl/lab/internal/userns"

	golxc "github.com/lxc/go-lxc"
	"golang.org/x/term"

	"github.com/labctl/lab/providers"
)

// DefaultPath is where LXC keeps containers, so lxc-ls and lxc-attach see
// lab's nodes too.
const DefaultPath = "/var/lib/lxc"

// BasePackages go into every LXC node image.
var BasePackages = providers.ContainerPackages

func init() {
	providers.Register("lxc", func(cfg providers.Config) (providers.Provider, error) {
		path := cfg.LXCPath
		if path == "" {
			path = DefaultPath
		}
		if os.Geteuid() == 0 {
			return New(path), nil
		}
		rl, err := newRootless() // before New: lab's home is the user's cgroups
		if err != nil {
			return nil, fmt.Errorf("lxc without root: %w", err)
		}
		p := New(path)
		p.rl = rl
		return p, nil
	})
}

// Provider is the LXC backend.
type Provider struct {
	path string
	// BootPoll is how often Start asks systemd whether boot is done.
	BootPoll time.Duration
	// IDs is the host id range of unprivileged nodes (from /etc/subuid and
	// /etc/subgid, read when the first such node is made).
	IDs    IDMap
	idsErr error
	idOnce sync.Once
	// rl is set when lab runs as a user, not root (rootless.go).
	rl *rootless
}

// ensureIDs reads (or allocates) the id range of unprivileged nodes.
func (p *Provider) ensureIDs() error {
	p.idOnce.Do(func() {
		switch {
		case p.IDs.Count != 0:
		case p.rl != nil:
			p.IDs = IDMap{UID: p.rl.ns.UID, GID: p.rl.ns.GID, Count: p.rl.ns.Count}
		default:
			p.IDs, p.idsErr = HostIDMap()
		}
	})
	return p.idsErr
}

// lower is the node's image as its user namespace sees it: the image, or
// for an unprivileged node its copy shifted to the node's id range.
func (p *Provider) lower(n providers.Node) string {
	if !n.Unprivileged || p.rl != nil { // a user's images are its namespace's already
		return n.Image.RootFS
	}
	return image.ShiftedPath(n.Image.RootFS, p.IDs.UID, p.IDs.GID)
}

// prepareUnprivileged makes what an unprivileged node's overlay needs: the
// shifted image, and its upper and work folders owned by its root.
func (p *Provider) prepareUnprivileged(ctx context.Context, n providers.Node) error {
	if err := p.ensureIDs(); err != nil {
		return err
	}
	if p.rl != nil {
		return os.MkdirAll(p.dir(n), 0o755) // Start makes the rest (arm)
	}
	if _, err := image.Shifted(ctx, n.Image.RootFS, p.IDs.UID, p.IDs.GID); err != nil {
		return err
	}
	for _, d := range []string{"delta0", "work"} {
		dir := filepath.Join(p.dir(n), d)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := os.Chown(dir, int(p.IDs.UID), int(p.IDs.GID)); err != nil {
			return err
		}
	}
	return nil
}

// New returns a provider keeping containers in path.
func New(path string) *Provider {
	rememberHome()
	return &Provider{path: path, BootPoll: 50 * time.Millisecond}
}

// Info: local, privileged containers on lab's bridges, frozen through the
// cgroup freezer.
func (p *Provider) Info() providers.Info {
	return providers.Info{Pause: true, Snapshots: true, StreamsOutput: true, SharesKernel: true, UserNamespaces: true}
}

func (p *Provider) Name() string { return "lxc" }

// ImagePackages are the packages every image for this provider needs.
func (p *Provider) ImagePackages() []string { return BasePackages }

func (p *Provider) dir(n providers.Node) string { return filepath.Join(p.path, n.ID) }

func (p *Provider) container(n providers.Node) (*golxc.Container, error) {
	c, err := golxc.NewContainer(n.ID, p.path)
	if err != nil {
		return nil, fmt.Errorf("node %s: lxc: %w", n.Name, err)
	}
	return c, nil
}

// Config renders the container's LXC configuration.
func (p *Provider) Config(n providers.Node) string {
	var b strings.Builder
	w := func(k, v string) { fmt.Fprintf(&b, "%s = %s\n", k, v) }
	b.WriteString("# Written by lab for node " + n.Name + " of lab " + n.Lab + ". lab rewrites it; edit the lab file instead.\n")
	fmt.Fprintf(&b, "%s%s\n%s%s\n%s%s\n", headLab, n.Lab, headNode, n.Name, headOwner, n.Owner)
	w("lxc.include", "/usr/share/lxc/config/common.conf")
	if p.rl != nil {
		// What a user may not do stays undone: no device cgroup rules.
		w("lxc.include", "/usr/share/lxc/config/userns.conf")
	}
	if n.Nesting {
		// proc and sys mounted where nothing covers them: a container in
		// the node may mount its own (the kernel refuses a proc whose
		// parts are covered); cgroups writable for its containers.
		w("lxc.include", "/usr/share/lxc/config/nesting.conf")
		w("lxc.mount.auto", "cgroup:rw:force")
	}
	w("lxc.arch", "linux64")
	w("lxc.uts.name", n.Name)
	w("lxc.rootfs.path", "overlay:"+p.lower(n)+":"+filepath.Join(p.dir(n), "delta0"))
	if n.Unprivileged {
		w("lxc.idmap", fmt.Sprintf("u 0 %d %d", p.IDs.UID, p.IDs.Count))
		w("lxc.idmap", fmt.Sprintf("g 0 %d %d", p.IDs.GID, p.IDs.Count))
		// liblxc mounts the overlay in the node's user namespace, where
		// overlayfs cannot keep its trusted.* attributes: without them a
		// folder made in the node cannot be renamed (EXDEV: PostgreSQL's
		// replication slots are). user.* ones it can.
		w("lxc.rootfs.options", "userxattr")
	}
	w("lxc.apparmor.profile", "unconfined")
	// systemd halts on SIGRTMIN+3; LXC's default SIGPWR would only reach sigpwr.target.
	w("lxc.signal.halt", "SIGRTMIN+3")
	w("lxc.log.file", filepath.Join(p.dir(n), "lxc.log"))
	w("lxc.log.level", "WARN")
	for i, ifc := range n.Interfaces {
		k := fmt.Sprintf("lxc.net.%d.", i)
		w(k+"type", "veth")
		w(k+"link", ifc.Bridge)
		w(k+"veth.pair", providers.PortName(n.Lab, n.Name, i))
		w(k+"flags", "up")
		w(k+"name", fmt.Sprintf("eth%d", i))
		w(k+"hwaddr", MAC(n.Lab, n.Name, i))
		w(k+"ipv4.address", fmt.Sprintf("%s %s", ifc.Addr, providers.Broadcast(ifc.Addr)))
		if ifc.Addr6.IsValid() {
			w(k+"ipv6.address", ifc.Addr6.String())
		}
	}
	if hasIPv6(n) {
		w("lxc.hook.pre-mount", dadOff)
	}
	for _, kv := range cgroupLimits(n.CPUs, n.Memory) {
		w(kv[0], kv[1])
	}
	return b.String()
}

// dadOff turns IPv6 duplicate address detection off in the node's network
// namespace before liblxc gives its interfaces their addresses (a
// pre-mount hook runs in the container's namespaces before the network is
// set up; lxc.sysctl is applied after). Lab's addresses are unique by
// construction, and DAD held every new address tentative for a second or
// two after boot, dropping what was sent to it. The kernel skips DAD when
// both "all" and the interface say 0, and an interface moved in later
// takes "default".
const dadOff = `/bin/sh -c 'for f in /proc/sys/net/ipv6/conf/*/accept_dad; do echo 0 > "$f"; done' lab-dad-off`

func hasIPv6(n providers.Node) bool {
	for _, ifc := range n.Interfaces {
		if ifc.Addr6.IsValid() {
			return true
		}
	}
	return false
}

// MAC is a stable, locally administered MAC address for a node's interface,
// so neighbours' ARP caches stay right across restarts.
func MAC(lab, node string, i int) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s/%s/%d", lab, node, i)))
	return fmt.Sprintf("0a:%02x:%02x:%02x:%02x:%02x", h[0], h[1], h[2], h[3], h[4])
}

func (p *Provider) Create(ctx context.Context, n providers.Node) error {
	if n.Image.RootFS == "" {
		return fmt.Errorf("node %s: create: no image", n.Name)
	}
	if err := p.checkOwner(n); err != nil {
		return err
	}
	if p.rl != nil && !n.Unprivileged {
		return fmt.Errorf("node %s: privileged nodes need root (lab runs as %s): drop privileged: true", n.Name, p.rl.user.Name)
	}
	if st, _ := p.State(ctx, n); st == providers.Running {
		return nil
	}
	// A user's node has its upper layer made by its root, at Start (arm).
	if p.rl == nil {
		if err := os.MkdirAll(filepath.Join(p.dir(n), "delta0"), 0o755); err != nil {
			return fmt.Errorf("node %s: create: %w", n.Name, err)
		}
	}
	if n.Unprivileged {
		if err := p.prepareUnprivileged(ctx, n); err != nil {
			return fmt.Errorf("node %s: create: %w", n.Name, err)
		}
	}
	if err := fsx.WriteAtomic(filepath.Join(p.dir(n), "config"), []byte(p.Config(n)), 0o644); err != nil {
		return fmt.Errorf("node %s: create: %w", n.Name, err)
	}
	return nil
}

func (p *Provider) Start(ctx context.Context, n providers.Node) error {
	c, err := p.container(n)
	if err != nil {
		return err
	}
	defer golxc.Release(c)
	if !c.Defined() {
		return fmt.Errorf("node %s: start: container %s is not defined in %s", n.Name, n.ID, p.path)
	}
	if c.State() == golxc.RUNNING {
		// Started before (by an earlier lab, or a restart it did not wait
		// for): ask systemd.
		err := providers.WaitSystemd(ctx, p, n, p.BootPoll)
		if err != nil && strings.Contains(err.Error(), "the node stopped") {
			return fmt.Errorf("%w%s", err, p.logTail(n))
		}
		return err
	}
	if err := p.armBooted(ctx, n); err != nil {
		return fmt.Errorf("node %s: start: %w", n.Name, err)
	}
	if err := c.WantCloseAllFds(true); err != nil {
		return fmt.Errorf("node %s: start: %w", n.Name, err)
	}
	err = spawn.Moving(func() error {
		defer goHome()
		return c.Start()
	})
	if err != nil {
		return fmt.Errorf("node %s: start: %w%s", n.Name, err, p.logTail(n))
	}
	return p.waitBooted(ctx, n)
}

func (p *Provider) logTail(n providers.Node) string {
	path := filepath.Join(p.dir(n), "lxc.log")
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return ""
	}
	return "\n  " + WhyLine(string(b)) + "\n  (lxc log: " + path + ")"
}

// WhyLine is the line of an LXC log that says why a container did not
// start: the first error (what follows it is mostly its consequences), or
// the last line when no line is an error.
func WhyLine(log string) string {
	lines := strings.Split(strings.TrimSpace(log), "\n")
	for _, l := range lines {
		if i := strings.Index(l, " ERROR "); i >= 0 {
			return strings.TrimSpace(l[i+1:])
		}
	}
	return strings.TrimSpace(lines[len(lines)-1])
}

func (p *Provider) Stop(ctx context.Context, n providers.Node) error {
	c, err := p.container(n)
	if err != nil {
		return err
	}
	defer golxc.Release(c)
	if !c.Defined() || c.State() == golxc.STOPPED {
		return nil
	}
	timeout := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = time.Until(dl)
	}
	if err := c.Shutdown(timeout); err != nil || c.State() != golxc.STOPPED {
		if err := c.Stop(); err != nil {
			return fmt.Errorf("node %s: stop: %w", n.Name, err)
		}
	}
	return nil
}

func (p *Provider) Destroy(ctx context.Context, n providers.Node) error {
	if err := p.checkOwner(n); err != nil {
		return err
	}
	c, err := p.container(n)
	if err != nil {
		return err
	}
	defer golxc.Release(c)
	if c.Defined() {
		if s := c.State(); s == golxc.FROZEN || s == golxc.FREEZING {
			_ = p.Resume(ctx, n) // a frozen init cannot die
		}
		if c.State() != golxc.STOPPED {
			// Destroy does not need a clean shutdown: kill at once.
			if err := c.Stop(); err != nil && c.State() != golxc.STOPPED {
				return fmt.Errorf("node %s: destroy: stop: %w", n.Name, err)
			}
		}
		// For a user, liblxc's destroy clones a child of this (threaded)
		// process that calls setgroups, and glibc's setgroups waits for
		// every thread it knows to acknowledge: one the Go runtime was
		// creating at the clone never will, and the child hangs for good
		// (seen: lab destroy stuck 9 minutes in __nptl_setxid). The
		// container is stopped; removing its folder below, from the
		// user's namespace through lxc-usernsexec (an exec, not a clone),
		// is all liblxc's destroy would do.
		if p.rl == nil {
			if err := c.Destroy(); err != nil && c.Defined() {
				return fmt.Errorf("node %s: destroy: %w", n.Name, err)
			}
		}
	}
	if n.ID == "" || strings.Contains(n.ID, "/") {
		return fmt.Errorf("node %s: destroy: bad container id %q", n.Name, n.ID)
	}
	// A user's node folder holds what root in the node owns: userns
	// removes it from the user's namespace.
	if err := userns.RemoveAll(p.dir(n)); err != nil {
		return fmt.Errorf("node %s: destroy: %w", n.Name, err)
	}
	RemoveCgroups(n.ID)
	return nil
}

func (p *Provider) State(_ context.Context, n providers.Node) (providers.State, error) {
	if _, err := os.Stat(filepath.Join(p.dir(n), "config")); errors.Is(err, os.ErrNotExist) {
		return providers.Absent, nil
	}
	c, err := p.container(n)
	if err != nil {
		return providers.Unknown, err
	}
	defer golxc.Release(c)
	if !c.Defined() {
		return providers.Absent, nil
	}
	switch c.State() {
	case golxc.RUNNING:
		return providers.Running, nil
	case golxc.STOPPED:
		return providers.Stopped, nil
	case golxc.STARTING:
		return providers.Running, nil
	case golxc.FROZEN, golxc.FREEZING:
		return providers.Paused, nil
	}
	return providers.Unknown, nil
}

func (p *Provider) CopyIn(ctx context.Context, n providers.Node, src io.Reader, dst string, mode fs.FileMode) error {
	return providers.CopyInWithExec(ctx, p, n, src, dst, mode)
}

func (p *Provider) Shell(ctx context.Context, n providers.Node, cmd []string) error {
	c, err := p.container(n)
	if err != nil {
		return err
	}
	defer golxc.Release(c)
	if c.State() != golxc.RUNNING {
		return fmt.Errorf("node %s is not running", n.Name)
	}
	termName := os.Getenv("TERM")
	if termName == "" {
		termName = "xterm"
	}
	env := append(append([]string{}, providers.BaseEnv...), "TERM="+termName)
	if len(cmd) == 0 {
		cmd = []string{"/bin/bash", "-l"}
	}
	// On a terminal, liblxc's lxc-attach gives the shell a pty of its own in
	// the container (raw mode, window size, job control).
	if term.IsTerminal(int(os.Stdin.Fd())) {
		args := []string{"-n", n.ID, "-P", p.path, "--clear-env"}
		for _, kv := range env {
			args = append(args, "-v", kv)
		}
		a := exec.CommandContext(ctx, "lxc-attach", append(append(args, "--"), cmd...)...)
		a.Dir = "/"
		a.Stdin, a.Stdout, a.Stderr = os.Stdin, os.Stdout, os.Stderr
		err := a.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return &providers.ExitError{Code: ee.ExitCode()}
		}
		return err
	}
	opts := golxc.DefaultAttachOptions
	opts.ClearEnv = true
	opts.Env = env
	opts.Cwd = "/root"
	code, err := c.RunCommandStatus(cmd, opts)
	if err != nil {
		return err
	}
	if code != 0 {
		return &providers.ExitError{Code: code}
	}
	return nil
}
