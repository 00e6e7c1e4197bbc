package lxc

import (
	"context"
	"fmt"

	golxc "github.com/lxc/go-lxc"

	"github.com/labctl/lab/providers"
)

// Pause freezes every process of the container (the cgroup freezer).
func (p *Provider) Pause(_ context.Context, n providers.Node) error {
	c, err := p.container(n)
	if err != nil {
		return err
	}
	defer golxc.Release(c)
	if c.State() != golxc.RUNNING {
		return fmt.Errorf("node %s: pause: it is %s, not running", n.Name, c.State())
	}
	if err := c.Freeze(); err != nil {
		return fmt.Errorf("node %s: pause: %w", n.Name, err)
	}
	return nil
}

// Resume thaws a frozen container.
func (p *Provider) Resume(_ context.Context, n providers.Node) error {
	c, err := p.container(n)
	if err != nil {
		return err
	}
	defer golxc.Release(c)
	if s := c.State(); s != golxc.FROZEN && s != golxc.FREEZING {
		return nil
	}
	if err := c.Unfreeze(); err != nil {
		return fmt.Errorf("node %s: resume: %w", n.Name, err)
	}
	return nil
}

// Kill stops the container at once: its init gets SIGKILL, nothing shuts
// down cleanly.
func (p *Provider) Kill(_ context.Context, n providers.Node) error {
	c, err := p.container(n)
	if err != nil {
		return err
	}
	defer golxc.Release(c)
	if c.State() == golxc.STOPPED {
		return nil
	}
	if s := c.State(); s == golxc.FROZEN || s == golxc.FREEZING {
		_ = c.Unfreeze()
	}
	if err := c.Stop(); err != nil && c.State() != golxc.STOPPED {
		return fmt.Errorf("node %s: kill: %w", n.Name, err)
	}
	return nil
}
