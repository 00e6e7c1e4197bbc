package lxc

import (
	"context"
	"fmt"
	"time"

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

// Resume thaws a frozen container, and one that a killed lab left half
// frozen (FREEZING), which liblxc's own thaw refuses.
func (p *Provider) Resume(ctx context.Context, n providers.Node) error {
	c, err := p.container(n)
	if err != nil {
		return err
	}
	defer golxc.Release(c)
	deadline := time.Now().Add(5 * time.Second)
	for {
		switch c.State() {
		case golxc.FROZEN:
			if err := c.Unfreeze(); err == nil || c.State() == golxc.RUNNING {
				return nil
			} else if time.Now().After(deadline) {
				return fmt.Errorf("node %s: resume: %w", n.Name, err)
			}
		case golxc.FREEZING:
			// A lab killed mid-freeze leaves liblxc's monitor saying
			// FREEZING whatever the freezer says, and liblxc thaws only a
			// FROZEN container: finish the freeze, then thaw it.
			_ = c.Freeze()
			if time.Now().After(deadline) {
				return fmt.Errorf("node %s: resume: still %s after 5s", n.Name, c.State())
			}
		case golxc.THAWED:
			if time.Now().After(deadline) {
				return fmt.Errorf("node %s: resume: still %s after 5s", n.Name, c.State())
			}
		default:
			return nil // running, stopped: nothing to thaw
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Kill stops the container at once: its init gets SIGKILL, nothing shuts
// down cleanly. A frozen container is thawed first (a frozen init cannot die).
func (p *Provider) Kill(ctx context.Context, n providers.Node) error {
	if err := p.Resume(ctx, n); err != nil {
		return err
	}
	c, err := p.container(n)
	if err != nil {
		return err
	}
	defer golxc.Release(c)
	if c.State() == golxc.STOPPED {
		return nil
	}
	if err := c.Stop(); err != nil && c.State() != golxc.STOPPED {
		return fmt.Errorf("node %s: kill: %w", n.Name, err)
	}
	return nil
}
