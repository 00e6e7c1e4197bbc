package libvirt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/labctl/lab/providers"
)

func (p *Provider) Start(ctx context.Context, n providers.Node) error {
	l, d, err := p.domain(n)
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	accel := p.Accel(n)
	autoKVM := accel == "kvm" && n.Accel != "kvm" && p.accel != "kvm"
	if st, _, err := l.DomainGetState(d, 0); err == nil && golibvirt.DomainState(st) != golibvirt.DomainRunning {
		if err := p.plug(ctx, n); err != nil {
			return err
		}
		if err := l.DomainCreate(d); err != nil {
			if autoKVM {
				return p.fallbackToTCG(ctx, l, d, n, err)
			}
			return fmt.Errorf("node %s: start: %w", n.Name, err)
		}
	}
	err = p.waitAgent(ctx, l, d, n, accel)
	if errors.Is(err, errKVMHang) && autoKVM {
		return p.fallbackToTCG(ctx, l, d, n, errors.New("the boot stopped making progress"))
	}
	if err != nil {
		return err
	}
	if err := p.configure(ctx, n); err != nil {
		return err
	}
	return providers.WaitSystemd(ctx, p, n, 150*time.Millisecond)
}

var errKVMHang = errors.New("kvm hang")

// fallbackToTCG is for a KVM that exists but does not run guests (nested
// virtualization often fails at start or hangs in early boot): it remembers
// that on this machine and boots the node again with TCG.
func (p *Provider) fallbackToTCG(ctx context.Context, l *golibvirt.Libvirt, d golibvirt.Domain, n providers.Node, why error) error {
	fmt.Fprintf(p.log, "lab: node %s: KVM does not run guests on this machine (%v); using TCG from now on (accel: kvm forces KVM)\n", n.Name, firstLine(why.Error()))
	if err := p.writeVerdict(); err != nil {
		return err
	}
	_ = l.DomainDestroy(d)
	if err := p.Create(ctx, n); err != nil {
		return err
	}
	return p.Start(ctx, n)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// waitAgent waits until the guest agent answers. A console that stops
// growing means the boot does not progress: under KVM that is the nested
// KVM hang; under TCG, a broken image.
func (p *Provider) waitAgent(ctx context.Context, l *golibvirt.Libvirt, d golibvirt.Domain, n providers.Node, accel string) error {
	_, console := p.paths(n)
	stall := 90 * time.Second
	if accel == "kvm" {
		stall = 20 * time.Second
	}
	lastSize, lastChange := int64(-1), time.Now()
	for {
		if _, err := l.QEMUDomainAgentCommand(d, `{"execute":"guest-ping"}`, 1, 0); err == nil {
			return nil
		}
		if fi, err := os.Stat(console); err == nil && fi.Size() != lastSize {
			lastSize, lastChange = fi.Size(), time.Now()
		}
		if time.Since(lastChange) > stall {
			if accel == "kvm" {
				return errKVMHang
			}
			return fmt.Errorf("node %s: boot does not progress (console %s: %s)", n.Name, console, lastLine(console))
		}
		if st, _, err := l.DomainGetState(d, 0); err == nil && golibvirt.DomainState(st) == golibvirt.DomainShutoff {
			return fmt.Errorf("node %s: the VM stopped while booting (console %s: %s)", n.Name, console, lastLine(console))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %s: boot: %w (console %s: %s)", n.Name, ctx.Err(), console, lastLine(console))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func lastLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "no output"
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// configure gives the VM its addresses and name through the agent: no DHCP,
// no gateway, the same addresses a container of that node would have.
func (p *Provider) configure(ctx context.Context, n providers.Node) error {
	var s strings.Builder
	s.WriteString("set -e\n")
	for i, ifc := range n.Interfaces {
		fmt.Fprintf(&s, "ip link set eth%d up\nip addr replace %s brd %s dev eth%d\n", i, ifc.Addr, providers.Broadcast(ifc.Addr), i)
		if ifc.Addr6.IsValid() {
			// No router sends advertisements on a lab network; none is taken.
			fmt.Fprintf(&s, "echo 0 > /proc/sys/net/ipv6/conf/eth%[1]d/accept_ra\necho 0 > /proc/sys/net/ipv6/conf/eth%[1]d/disable_ipv6\nip -6 addr replace %[2]s dev eth%[1]d nodad\n", i, ifc.Addr6)
		}
	}
	fmt.Fprintf(&s, "hostname %s\necho %s > /etc/hostname\n", n.Name, n.Name)
	var out bytes.Buffer
	code, err := p.Exec(ctx, n, []string{"/bin/sh", "-c", s.String()}, providers.ExecIO{Stdout: &out, Stderr: &out})
	if err != nil {
		return fmt.Errorf("node %s: network: %w", n.Name, err)
	}
	if code != 0 {
		return fmt.Errorf("node %s: network: exit %d: %s", n.Name, code, strings.TrimSpace(out.String()))
	}
	return nil
}
