package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/labctl/lab/image"
	"github.com/labctl/lab/providers"
	"github.com/labctl/lab/state"
	"github.com/labctl/lab/topology"
)

// SnapshotRestore puts the named nodes (none: every node of the snapshot)
// back as snapshot name saved them: disks, and the records of their
// provisioning. A whole-lab restore also destroys the nodes that did not
// exist then; all nodes restored are stopped first and started together.
func (e *Engine) SnapshotRestore(ctx context.Context, top *topology.Topology, name string, nodes []string) error {
	c, err := e.open(ctx, top, true)
	if err != nil {
		return err
	}
	defer c.close()
	snap, err := c.loadSnapshot(name)
	if err != nil {
		return err
	}
	for _, n := range nodes {
		if !slices.Contains(snap.Nodes, n) {
			return usagef("snapshot %s has no node %s (it has %s)", name, n, strings.Join(snap.Nodes, ", "))
		}
	}
	whole := len(nodes) == 0 && snap.Whole
	if len(nodes) == 0 {
		nodes = snap.Nodes
	}
	t := time.Now()
	if whole {
		var gone []string
		for _, n := range c.st.NodeNames() {
			if !slices.Contains(snap.Nodes, n) {
				gone = append(gone, n)
			}
		}
		if err := c.dropFaultsOf(gone); err != nil {
			return err
		}
		if err := c.destroyNodes(gone); err != nil {
			return err
		}
	}
	if err := c.dropFaultsOf(nodes); err != nil {
		return err
	}
	if err := c.upNetworks(); err != nil {
		return err
	}
	if err := c.applyPolicy(); err != nil {
		return err
	}
	if err := c.restoreNodes(snap, nodes); err != nil {
		return err
	}
	c.emit("", PhaseSnapshot, "restored %s: %d nodes (%.2fs)", name, len(nodes), time.Since(t).Seconds())
	return nil
}

// loadSnapshot finds a snapshot of this lab.
func (c *call) loadSnapshot(name string) (*state.Snapshot, error) {
	snap, err := c.e.Store.LoadSnapshot(name)
	switch {
	case errors.Is(err, state.ErrNoSnapshot):
		return nil, usagef("no snapshot %q (lab snapshot list)", name)
	case err != nil:
		var u *UsageError
		if !errors.As(err, &u) && strings.HasPrefix(err.Error(), "snapshot name") {
			return nil, &UsageError{err.Error()}
		}
		return nil, err
	case snap.Lab != c.lab.Name:
		return nil, usagef("snapshot %s is of lab %s, not %s", name, snap.Lab, c.lab.Name)
	}
	return snap, nil
}

// restoreNodes stops the nodes, puts their disks back, and starts them
// again, all in parallel phases so that they come back together.
func (c *call) restoreNodes(snap *state.Snapshot, nodes []string) error {
	dir := c.e.Store.SnapshotPath(snap.Name)
	g, gctx := errgroup.WithContext(c.ctx)
	g.SetLimit(c.e.workers())
	for _, n := range nodes {
		g.Go(func() error { return c.putBack(gctx, snap, dir, n) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	g, gctx = errgroup.WithContext(c.ctx)
	g.SetLimit(c.e.workers())
	for _, n := range nodes {
		g.Go(func() error {
			node := c.lab.Node(n)
			p, err := c.e.provider(snap.State.Nodes[n].Provider)
			if err != nil {
				return err
			}
			tgt := c.e.target(c.lab, *node, nil)
			tgt.ID = snap.State.Nodes[n].ID
			return c.startNode(gctx, *node, p, tgt)
		})
	}
	return g.Wait()
}

// putBack stops one node hard (it is being replaced), makes it if it is
// gone, copies its saved disk in and restores its record.
func (c *call) putBack(ctx context.Context, snap *state.Snapshot, dir, n string) error {
	rec := snap.State.Nodes[n]
	node := c.lab.Node(n)
	if node == nil {
		return usagef("snapshot %s has node %s, which the lab file no longer has", snap.Name, n)
	}
	p, err := c.e.provider(rec.Provider)
	if err != nil {
		return err
	}
	sn, ok := p.(providers.Snapshotter)
	if !ok {
		return usagef("node %s: provider %s cannot restore snapshots", n, p.Name())
	}
	img, err := c.imageOf(*node, p, rec.Image)
	if err != nil {
		return err
	}
	tgt := c.e.target(c.lab, *node, img)
	tgt.ID = rec.ID
	t := time.Now()
	c.mu.Lock()
	cur := c.st.Nodes[n]
	c.mu.Unlock()
	if cur != nil {
		if k, ok := p.(providers.Killer); ok {
			if err := k.Kill(ctx, tgt); err != nil {
				return err
			}
		} else if err := p.Stop(ctx, tgt); err != nil {
			return err
		}
	}
	stopped := time.Since(t)
	r := *rec
	r.Phase = state.PhaseCreating
	if err := c.update(func() { c.st.Nodes[n] = &r }); err != nil {
		return err
	}
	if err := p.Create(ctx, tgt); err != nil {
		return err
	}
	if err := sn.RestoreDisk(ctx, tgt, state.NodeDir(dir, n)); err != nil {
		return fmt.Errorf("node %s: restore: %w", n, err)
	}
	c.emit(n, PhaseSnapshot, "disk restored (stopped in %.2fs, disk in %.2fs)", stopped.Seconds(), (time.Since(t) - stopped).Seconds())
	return c.update(func() { c.st.Nodes[n].Phase = state.PhaseCreated })
}

// imageOf is the image a node was saved from, which must be what the lab
// file makes it from now.
func (c *call) imageOf(n topology.Node, p providers.Provider, key string) (*image.Image, error) {
	spec := c.e.imageSpec(n, p)
	if key != "" && spec.Key() != key {
		return nil, usagef("node %s: the snapshot was made from image %s, the lab file now makes %s (packages or suite changed)", n.Name, key, spec.Key())
	}
	if c.e.Images == nil {
		return nil, nil
	}
	built, err := c.ensureImages([]image.Spec{spec})
	if err != nil {
		return nil, err
	}
	return built[spec.Key()], nil
}
