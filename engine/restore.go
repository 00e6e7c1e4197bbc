package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/labctl/lab/image"
	"github.com/labctl/lab/providers"
	"github.com/labctl/lab/provision"
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
	if err := c.refreshPorts(); err != nil {
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
	if err := c.putBackAll(snap, nodes); err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(c.ctx)
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
	if err := g.Wait(); err != nil {
		return err
	}
	return c.healthAll(nodes)
}

// healthAll runs the health checks of nodes in parallel, so that a restore
// hands back a lab that serves as it did when it was saved, as up does.
func (c *call) healthAll(nodes []string) error {
	if c.e.Provisioner == nil {
		return nil
	}
	g, gctx := errgroup.WithContext(c.ctx)
	g.SetLimit(c.e.workers())
	for _, n := range nodes {
		node := c.lab.Node(n)
		if node == nil || len(node.Spec.Health) == 0 {
			continue
		}
		g.Go(func() error {
			p, err := c.e.provider(node.Provider)
			if err != nil {
				return err
			}
			logf, err := c.logFile(n)
			if err != nil {
				return err
			}
			defer logf.Close()
			req := provision.Request{Lab: c.lab, Node: *node, Target: c.nodeTarget(*node, nil), Provider: p, Log: logf}
			return c.checkHealth(gctx, req)
		})
	}
	return g.Wait()
}

// putBackAll puts the disks of nodes back in parallel. Every node is marked
// as being restored before the first one is touched: a restore killed
// midway leaves each node either restored or marked, and the next restore
// or up finishes it (finishRestores) instead of keeping a mix of old and
// restored disks.
func (c *call) putBackAll(snap *state.Snapshot, nodes []string) error {
	if err := c.update(func() {
		for _, n := range nodes {
			if rec := c.st.Nodes[n]; rec != nil {
				rec.Restoring = snap.Name
			}
		}
	}); err != nil {
		return err
	}
	dir := c.e.Store.SnapshotPath(snap.Name)
	g, gctx := errgroup.WithContext(c.ctx)
	g.SetLimit(c.e.workers())
	for _, n := range nodes {
		g.Go(func() error { return c.putBack(gctx, snap, dir, n) })
	}
	return g.Wait()
}

// finishRestores finishes the restores an earlier command was stopped in
// (nodes marked Restoring): their disks are put back from the snapshot, so
// that up starts them as the snapshot has them. A snapshot that is gone
// since leaves the node as it is, and says so.
func (c *call) finishRestores() error {
	bySnap := map[string][]string{}
	for _, n := range c.st.NodeNames() {
		if s := c.st.Nodes[n].Restoring; s != "" {
			bySnap[s] = append(bySnap[s], n)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(bySnap)) {
		nodes := bySnap[name]
		snap, err := c.e.Store.LoadSnapshot(name)
		if errors.Is(err, state.ErrNoSnapshot) {
			if err := c.abandonRestore(name, nodes); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("finish the restore of snapshot %s: %w", name, err)
		}
		c.emit("", PhaseSnapshot, "finishing the interrupted restore of snapshot %s: %s", name, strings.Join(nodes, ", "))
		if err := c.putBackAll(snap, nodes); err != nil {
			return err
		}
	}
	return nil
}

// abandonRestore ends the interrupted restore of a snapshot that is gone:
// nodes it had not touched keep their disks; those whose disk it was
// putting back are half-made, so they are destroyed and up makes them
// afresh.
func (c *call) abandonRestore(name string, nodes []string) error {
	var keep, half []string
	for _, n := range nodes {
		if c.st.Nodes[n].Phase == state.PhaseCreating {
			half = append(half, n)
		} else {
			keep = append(keep, n)
		}
	}
	if len(keep) > 0 {
		c.emit("", PhaseSnapshot, "the restore of snapshot %s was interrupted and the snapshot is gone: %s keep their disks", name, strings.Join(keep, ", "))
	}
	if len(half) > 0 {
		c.emit("", PhaseSnapshot, "the restore of snapshot %s was interrupted and the snapshot is gone: %s were half restored and are made afresh", name, strings.Join(half, ", "))
	}
	if err := c.update(func() {
		for _, n := range nodes {
			c.st.Nodes[n].Restoring = ""
		}
	}); err != nil {
		return err
	}
	return c.destroyNodes(half)
}

// putBack stops one node hard (it is being replaced), makes it if it is
// gone, copies its saved disk in and restores its record.
func (c *call) putBack(ctx context.Context, snap *state.Snapshot, dir, n string) error {
	rec := snap.State.Nodes[n]
	node := c.lab.Node(n)
	if node == nil {
		return usagef("snapshot %s has node %s, which the lab file no longer has", snap.Name, n)
	}
	if rec.Unprivileged != node.Unprivileged {
		return usagef("node %s: the lab file makes it %s, snapshot %s saved it %s (the owners of its files differ)", n, privilegeOf(node.Unprivileged), snap.Name, privilegeOf(rec.Unprivileged))
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
	r.Phase, r.Restoring = state.PhaseCreating, snap.Name
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
	return c.update(func() { c.st.Nodes[n].Phase, c.st.Nodes[n].Restoring = state.PhaseCreated, "" })
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
