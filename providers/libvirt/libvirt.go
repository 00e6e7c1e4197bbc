// Package libvirt runs lab nodes as VMs through libvirtd, with
// github.com/digitalocean/go-libvirt (libvirt's RPC protocol in pure Go).
// A VM boots its image's kernel directly from a qcow2 overlay on a disk made
// from the same cached root filesystems containers use, sits on the lab's
// bridges like a container, and is reached without SSH through
// qemu-guest-agent: commands, files, addresses, shutdown.
package libvirt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
	"golang.org/x/sys/unix"

	"github.com/labctl/lab/providers"
)

// BasePackages go into every VM image: a kernel that boots it, udev,
// the guest agent lab talks through.
var BasePackages = []string{"linux-image-amd64", "initramfs-tools", "systemd-sysv", "udev", "iproute2", "iputils-ping", "procps", "netbase", "qemu-guest-agent"}

// Paths are where the provider keeps and finds things on the host.
type Paths struct {
	Disks   string // each VM's overlay disk and console log
	Configs string // libvirtd's saved domain definitions, read by List
	Socket  string // libvirtd's read-write socket
	Verdict string // remembers that KVM hung on this machine
}

// DefaultPaths are Debian's and lab's places.
var DefaultPaths = Paths{
	Disks:   "/var/lib/lab/libvirt",
	Configs: "/etc/libvirt/qemu",
	Socket:  "/var/run/libvirt/libvirt-sock",
	Verdict: "/var/lib/lab/kvm-hangs",
}

// dirs are the provider's paths, each defaulted.
func (p *Provider) dirs() Paths {
	d := p.Paths
	for _, f := range []struct {
		v   *string
		def string
	}{
		{&d.Disks, DefaultPaths.Disks}, {&d.Configs, DefaultPaths.Configs},
		{&d.Socket, DefaultPaths.Socket}, {&d.Verdict, DefaultPaths.Verdict},
	} {
		if *f.v == "" {
			*f.v = f.def
		}
	}
	return d
}

func init() {
	providers.Register("libvirt", func(cfg providers.Config) (providers.Provider, error) {
		if os.Geteuid() != 0 {
			return newSession(cfg)
		}
		return &Provider{accel: cfg.Accel, log: os.Stderr, readOnly: cfg.ReadOnly}, nil
	})
}

// Provider is the libvirt backend. It connects on first use.
type Provider struct {
	accel string // forced acceleration (kvm or tcg), from LAB_LIBVIRT_ACCEL
	log   io.Writer
	// readOnly: never start libvirtd or change /dev/kvm (status, plan, …).
	readOnly bool
	// Paths are where it keeps and finds things; zero fields: DefaultPaths.
	Paths Paths

	// session is set for a user that is not root: qemu:///session.
	session *session

	mu   sync.Mutex
	conn *golibvirt.Libvirt
}

// uri is the libvirt connection the provider uses.
func (p *Provider) uri() golibvirt.ConnectURI {
	if p.session != nil {
		return golibvirt.QEMUSession
	}
	return golibvirt.QEMUSystem
}

// Info: local VMs on lab's bridges, through the local libvirtd.
func (p *Provider) Info() providers.Info { return providers.Info{Pause: true, Snapshots: true} }

func (p *Provider) Name() string { return "libvirt" }

// ImagePackages are what every VM image needs.
func (p *Provider) ImagePackages() []string { return BasePackages }

func (p *Provider) lv() (*golibvirt.Libvirt, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != nil {
		select {
		case <-p.conn.Disconnected():
			p.conn = nil
		default:
			return p.conn, nil
		}
	}
	if p.session != nil {
		if err := ensureSession(p.dirs().Socket); err != nil {
			return nil, err
		}
	} else if p.readOnly {
		if !answers(p.dirs().Socket) {
			return nil, fmt.Errorf("libvirtd is not running (nothing answers on %s); lab up starts it", p.dirs().Socket)
		}
	} else {
		fixKVMAccess(p.log)
		if err := ensureDaemons(p.log, p.dirs().Socket); err != nil {
			return nil, err
		}
	}
	l := golibvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(p.dirs().Socket), dialers.WithLocalTimeout(5*time.Second)))
	if err := l.ConnectToURI(p.uri()); err != nil {
		return nil, fmt.Errorf("libvirt: connect: %w", err)
	}
	p.conn = l
	return l, nil
}

func (p *Provider) paths(n providers.Node) (disk, console string) {
	d := p.dirs().Disks
	return filepath.Join(d, n.ID+".qcow2"), filepath.Join(d, n.ID+".console.log")
}

// Accel chooses kvm or tcg for a node: the node's (or LAB_LIBVIRT_ACCEL's)
// choice, else kvm when /dev/kvm exists and has not been seen to hang here.
func (p *Provider) Accel(n providers.Node) string {
	for _, a := range []string{n.Accel, p.accel} {
		if a == "kvm" || a == "tcg" {
			return a
		}
	}
	if unix.Access("/dev/kvm", unix.R_OK|unix.W_OK) != nil || p.kvmHangs() {
		return "tcg" // none, not the user's (group kvm), or hangs here
	}
	return "kvm"
}

// The verdict file remembers that KVM hung on this machine (nested KVM often
// exists but never runs a guest), so later boots go straight to TCG.
func (p *Provider) kvmHangs() bool { return fileExists(p.dirs().Verdict) }

func (p *Provider) writeVerdict() error {
	v := p.dirs().Verdict
	if err := os.MkdirAll(filepath.Dir(v), 0o755); err != nil {
		return err
	}
	return os.WriteFile(v, []byte("KVM hung at boot; delete this file to try KVM again\n"), 0o644)
}

func (p *Provider) lookup(l *golibvirt.Libvirt, n providers.Node) (golibvirt.Domain, bool, error) {
	d, err := l.DomainLookupByName(n.ID)
	if err != nil {
		if golibvirt.IsNotFound(err) {
			return d, false, nil
		}
		return d, false, fmt.Errorf("node %s: libvirt: %w", n.Name, err)
	}
	return d, true, nil
}

func (p *Provider) Create(ctx context.Context, n providers.Node) error {
	if n.Image.RootFS == "" {
		return fmt.Errorf("node %s: create: no image", n.Name)
	}
	l, err := p.lv()
	if err != nil {
		return err
	}
	if d, ok, err := p.lookup(l, n); err != nil {
		return err
	} else if ok {
		if err := p.checkOwner(l, d, n); err != nil {
			return err
		}
		if st, _, err := l.DomainGetState(d, 0); err == nil && golibvirt.DomainState(st) == golibvirt.DomainRunning {
			return nil
		}
	}
	base, err := ensureBase(ctx, n.Image.RootFS, p.build)
	if err != nil {
		return fmt.Errorf("node %s: vm disk: %w", n.Name, err)
	}
	if err := os.MkdirAll(p.dirs().Disks, 0o755); err != nil {
		return err
	}
	disk, _ := p.paths(n)
	if !fileExists(disk) {
		if out, err := exec.CommandContext(ctx, "qemu-img", "create", "-q", "-f", "qcow2", "-b", base.Disk, "-F", "qcow2", disk).CombinedOutput(); err != nil {
			return fmt.Errorf("node %s: overlay: %v: %s", n.Name, err, out)
		}
	}
	if _, err := l.DomainDefineXML(p.DomainXML(n, base, p.Accel(n))); err != nil {
		return fmt.Errorf("node %s: define: %w", n.Name, err)
	}
	return nil
}

func (p *Provider) Stop(ctx context.Context, n providers.Node) error {
	l, err := p.lv()
	if err != nil {
		return err
	}
	d, ok, err := p.lookup(l, n)
	if err != nil || !ok {
		return err
	}
	if st, _, err := l.DomainGetState(d, 0); err != nil || golibvirt.DomainState(st) != golibvirt.DomainRunning {
		return err
	}
	// A clean shutdown: systemd through the agent (the agent's own
	// guest-shutdown schedules it through logind, which needs D-Bus that
	// minimal images lack), else ACPI; forced after a while.
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err = p.Exec(actx, n, []string{"systemctl", "poweroff", "--no-block"}, providers.ExecIO{})
	cancel()
	if err != nil {
		_ = l.DomainShutdownFlags(d, golibvirt.DomainShutdownAcpiPowerBtn)
	}
	deadline := time.Now().Add(30 * time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	for time.Now().Before(deadline) {
		if st, _, err := l.DomainGetState(d, 0); err == nil && golibvirt.DomainState(st) == golibvirt.DomainShutoff {
			return nil
		}
		time.Sleep(300 * time.Millisecond)
	}
	if err := l.DomainDestroy(d); err != nil {
		return fmt.Errorf("node %s: stop: %w", n.Name, err)
	}
	return nil
}

func (p *Provider) Destroy(ctx context.Context, n providers.Node) error {
	if n.ID == "" || strings.ContainsAny(n.ID, "/ ") {
		return fmt.Errorf("node %s: destroy: bad domain name %q", n.Name, n.ID)
	}
	l, err := p.lv()
	if err != nil {
		return err
	}
	d, ok, err := p.lookup(l, n)
	if err != nil {
		return err
	}
	if ok {
		if err := p.checkOwner(l, d, n); err != nil {
			return err
		}
		if st, _, err := l.DomainGetState(d, 0); err == nil && golibvirt.DomainState(st) != golibvirt.DomainShutoff {
			if err := l.DomainDestroy(d); err != nil && !golibvirt.IsNotFound(err) {
				return fmt.Errorf("node %s: destroy: %w", n.Name, err)
			}
		}
		if err := l.DomainUndefineFlags(d, golibvirt.DomainUndefineManagedSave|golibvirt.DomainUndefineNvram); err != nil && !golibvirt.IsNotFound(err) {
			return fmt.Errorf("node %s: undefine: %w", n.Name, err)
		}
	}
	disk, console := p.paths(n)
	for _, f := range []string{disk, console} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("node %s: destroy: %w", n.Name, err)
		}
	}
	return p.unplug(ctx, n)
}

func (p *Provider) State(ctx context.Context, n providers.Node) (providers.State, error) {
	l, err := p.lv()
	if err != nil {
		return providers.Unknown, err
	}
	d, ok, err := p.lookup(l, n)
	if err != nil {
		return providers.Unknown, err
	}
	if !ok {
		return providers.Absent, nil
	}
	st, _, err := l.DomainGetState(d, 0)
	if err != nil {
		return providers.Unknown, err
	}
	switch golibvirt.DomainState(st) {
	case golibvirt.DomainRunning:
		return providers.Running, nil
	case golibvirt.DomainShutoff:
		return providers.Stopped, nil
	case golibvirt.DomainPaused:
		return providers.Paused, nil
	}
	return providers.Unknown, nil
}

// domain connects and finds a node's domain, which must exist.
func (p *Provider) domain(n providers.Node) (*golibvirt.Libvirt, golibvirt.Domain, error) {
	l, err := p.lv()
	if err != nil {
		return nil, golibvirt.Domain{}, err
	}
	d, ok, err := p.lookup(l, n)
	if err == nil && !ok {
		err = fmt.Errorf("node %s: domain %s is not defined", n.Name, n.ID)
	}
	return l, d, err
}
