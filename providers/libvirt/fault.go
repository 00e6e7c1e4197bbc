package libvirt

import (
	"context"
	"fmt"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/labctl/lab/providers"
)

// Pause freezes the guest's filesystems through the agent (so a copy of
// the disk is clean, not only crash-consistent), then suspends the VM: its
// vCPUs stop, its memory stays.
func (p *Provider) Pause(_ context.Context, n providers.Node) error {
	l, d, err := p.domain(n)
	if err != nil {
		return err
	}
	var frozen int
	_ = p.agent(n, "guest-fsfreeze-freeze", map[string]any{}, &frozen) // best effort: a VM without it still pauses
	if err := l.DomainSuspend(d); err != nil {
		return fmt.Errorf("node %s: pause: %w", n.Name, err)
	}
	return nil
}

// Resume lets a suspended VM run on.
func (p *Provider) Resume(_ context.Context, n providers.Node) error {
	l, d, err := p.domain(n)
	if err != nil {
		return err
	}
	if st, _, err := l.DomainGetState(d, 0); err == nil && golibvirt.DomainState(st) != golibvirt.DomainPaused {
		return nil
	}
	if err := l.DomainResume(d); err != nil {
		return fmt.Errorf("node %s: resume: %w", n.Name, err)
	}
	var thawed int
	_ = p.agent(n, "guest-fsfreeze-thaw", map[string]any{}, &thawed)
	return nil
}

// Kill pulls the VM's plug: no clean shutdown.
func (p *Provider) Kill(_ context.Context, n providers.Node) error {
	l, d, err := p.domain(n)
	if err != nil {
		return err
	}
	if st, _, err := l.DomainGetState(d, 0); err == nil && golibvirt.DomainState(st) == golibvirt.DomainShutoff {
		return nil
	}
	if err := l.DomainDestroy(d); err != nil {
		return fmt.Errorf("node %s: kill: %w", n.Name, err)
	}
	return nil
}
