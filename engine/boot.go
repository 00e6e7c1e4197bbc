package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/labctl/lab/image"
	"github.com/labctl/lab/plan"
	"github.com/labctl/lab/providers"
	"github.com/labctl/lab/provision"
	"github.com/labctl/lab/state"
	"github.com/labctl/lab/topology"
)

// bootNode creates and starts a node as its plan step says, then gives it
// the lab's files.
func (c *call) bootNode(ctx context.Context, n topology.Node, action plan.Action, img *image.Image) error {
	prov, err := c.e.provider(n.Provider)
	if err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	tgt := c.nodeTarget(n, img)
	switch action {
	case plan.Create, plan.Replace, plan.Start:
		if img == nil && c.e.Images != nil {
			return fmt.Errorf("node %s: no image", n.Name)
		}
		t := time.Now()
		if action != plan.Start {
			if err := c.createNode(ctx, n, prov, tgt); err != nil {
				return err
			}
		}
		if err := c.startNode(ctx, n, prov, tgt); err != nil {
			return err
		}
		if c.onOwned(n) {
			if err := c.guardInside(ctx, n, prov, tgt); err != nil {
				c.emit(n.Name, PhaseFailed, "%v", err)
				return err
			}
		}
		c.emit(n.Name, PhaseReady, "booted in %.2fs", time.Since(t).Seconds())
	}
	if err := c.thawLeftover(ctx, n, prov, tgt); err != nil {
		return err
	}
	if err := c.writeFiles(ctx, n, prov, tgt); err != nil {
		c.emit(n.Name, PhaseFailed, "%v", err)
		return err
	}
	return nil
}

// createNode records the node, then makes it: destroy finds a node that a
// killed lab left half-made.
func (c *call) createNode(ctx context.Context, n topology.Node, prov providers.Provider, tgt providers.Node) error {
	var addrs []string
	for _, ifc := range n.Interfaces {
		addrs = append(addrs, ifc.Addr.String())
	}
	if err := c.update(func() {
		c.st.Nodes[n.Name] = &state.Node{Name: n.Name, Role: n.Role, Index: n.Index, Provider: prov.Name(), ID: tgt.ID,
			Image: tgt.Image.Key, Addresses: addrs, Phase: state.PhaseCreating, CreatedAt: time.Now().UTC(), Unprivileged: tgt.Unprivileged}
	}); err != nil {
		return err
	}
	c.emit(n.Name, PhaseCreate, "%s %s", n.IP(), tgt.ID)
	if err := prov.Create(ctx, tgt); err != nil {
		c.emit(n.Name, PhaseFailed, "%v", err)
		return err
	}
	if err := c.fromSnapshot(ctx, n, prov, tgt); err != nil {
		c.emit(n.Name, PhaseFailed, "%v", err)
		return err
	}
	return c.update(func() { c.st.Nodes[n.Name].Phase = state.PhaseCreated })
}

// startNode boots the node within the lab's boot timeout.
func (c *call) startNode(ctx context.Context, n topology.Node, prov providers.Provider, tgt providers.Node) error {
	bootTimeout, _ := c.lab.Topology.Timeouts()
	c.emit(n.Name, PhaseStart, "")
	bctx, cancel := context.WithTimeout(ctx, bootTimeout)
	err := prov.Start(bctx, tgt)
	timedOut := errors.Is(bctx.Err(), context.DeadlineExceeded)
	cancel()
	if err != nil {
		if ctx.Err() == nil && timedOut {
			err = fmt.Errorf("node %s: not up after %s (defaults.boot_timeout): %w", n.Name, bootTimeout, err)
		}
		c.emit(n.Name, PhaseFailed, "%v", err)
		return err
	}
	if pn, ok := prov.(providers.PortNamer); ok && pn.NamesPorts() {
		c.portsMoved.Store(true)
	}
	return c.update(func() { c.st.Nodes[n.Name].Phase = state.PhaseRunning })
}

// thawLeftover thaws a node left frozen by a lab command that was killed
// mid-snapshot (a pause fault never gets here: up leaves such a node alone).
func (c *call) thawLeftover(ctx context.Context, n topology.Node, prov providers.Provider, tgt providers.Node) error {
	pp, ok := prov.(providers.Pauser)
	if !ok {
		return nil
	}
	if st, _ := prov.State(ctx, tgt); st != providers.Paused {
		return nil
	}
	c.emit(n.Name, PhaseStart, "thawed: a lab command that froze it ended before thawing it")
	return pp.Resume(ctx, tgt)
}

// writeFiles gives a node what it receives from lab (provision.NodeFiles),
// in one exec, or through the provider's own file writer.
func (c *call) writeFiles(ctx context.Context, n topology.Node, prov providers.Provider, tgt providers.Node) error {
	pub, err := c.publicKey(n)
	if err != nil {
		return err
	}
	files, script, err := provision.NodeFiles(c.lab, n, pub)
	if err != nil {
		return err
	}
	if fw, ok := prov.(providers.FileWriter); ok {
		if err := fw.WriteFiles(ctx, tgt, files, script); err != nil {
			return fmt.Errorf("node %s: write lab files: %w", n.Name, err)
		}
		return nil
	}
	var stderr strings.Builder
	all := provision.WriteFilesScript(files) + script
	code, err := prov.Exec(ctx, tgt, []string{"/bin/sh", "-s"}, providers.ExecIO{Stdin: strings.NewReader(all), Stderr: &stderr})
	if err != nil {
		return fmt.Errorf("node %s: write lab files: %w", n.Name, err)
	}
	if code != 0 {
		return fmt.Errorf("node %s: write lab files: exit %d: %s", n.Name, code, strings.TrimSpace(stderr.String()))
	}
	return nil
}
