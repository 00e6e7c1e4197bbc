package engine

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/labctl/lab/providers"
	"github.com/labctl/lab/provision"
	"github.com/labctl/lab/state"
	"github.com/labctl/lab/topology"
)

// useSnapshot prepares up --from: a fresh lab, and a whole-lab snapshot
// whose nodes, images and steps the lab file still has (unless force).
func (c *call) useSnapshot(name string, force bool) error {
	snap, err := c.loadSnapshot(name)
	if err != nil {
		return err
	}
	if !snap.Whole {
		return usagef("snapshot %s holds some nodes only (%s): up --from needs a whole-lab snapshot", name, strings.Join(snap.Nodes, ", "))
	}
	if len(c.st.Nodes) > 0 {
		return usagef("lab %s exists: lab destroy it first, or lab snapshot restore %s", c.lab.Name, name)
	}
	for _, n := range c.lab.Nodes {
		if rec := snap.State.Nodes[n.Name]; rec != nil && rec.Unprivileged != n.Unprivileged {
			return usagef("node %s: the lab file makes it %s, snapshot %s saved it %s (the owners of its files differ; --force cannot change that)", n.Name, privilegeOf(n.Unprivileged), name, privilegeOf(rec.Unprivileged))
		}
	}
	if diffs := c.snapshotDiffs(snap); len(diffs) > 0 && !force {
		return usagef("the lab file differs from snapshot %s (--force takes it anyway; changed steps then run):\n  %s", name, strings.Join(diffs, "\n  "))
	}
	c.from = snap
	return nil
}

// snapshotDiffs says where the lab file differs from what the snapshot was
// made from: its nodes, their images, their steps.
func (c *call) snapshotDiffs(snap *state.Snapshot) []string {
	var diffs []string
	var names []string
	for _, n := range c.lab.Nodes {
		names = append(names, n.Name)
		rec := snap.State.Nodes[n.Name]
		if rec == nil {
			diffs = append(diffs, fmt.Sprintf("node %s: not in the snapshot", n.Name))
			continue
		}
		if p, err := c.e.provider(n.Provider); err == nil && c.e.imageSpec(n, p).Key() != rec.Image {
			diffs = append(diffs, fmt.Sprintf("node %s: image %s, the snapshot's is %s", n.Name, c.e.imageSpec(n, p).Key(), rec.Image))
		}
		diffs = append(diffs, c.stepDiffs(n, rec)...)
	}
	for _, n := range snap.Nodes {
		if !slices.Contains(names, n) {
			diffs = append(diffs, fmt.Sprintf("node %s: in the snapshot, not in the lab file", n))
		}
	}
	return diffs
}

// stepDiffs names the steps of a node whose inputs changed since the record.
func (c *call) stepDiffs(n topology.Node, rec *state.Node) []string {
	var out []string
	facts := provision.Facts(c.lab, n)
	for i, s := range n.Spec.Provision {
		h, err := provision.StepHash(c.lab.Topology, s, facts)
		if err != nil || rec.Provision == nil || i >= len(rec.Provision.Steps) || rec.Provision.Steps[i].Hash != h {
			out = append(out, fmt.Sprintf("node %s: %s changed", n.Name, provision.Label(i, s)))
		}
	}
	return out
}

// fromSnapshot gives a new node its saved disk and provisioning record.
func (c *call) fromSnapshot(ctx context.Context, n topology.Node, prov providers.Provider, tgt providers.Node) error {
	if c.from == nil {
		return nil
	}
	rec := c.from.State.Nodes[n.Name]
	if rec == nil {
		return nil
	}
	sn, ok := prov.(providers.Snapshotter)
	if !ok {
		return usagef("node %s: provider %s cannot restore snapshots", n.Name, prov.Name())
	}
	put := sn.RestoreDisk
	if c.takeFrom {
		put = sn.TakeDisk
	}
	if err := put(ctx, tgt, state.NodeDir(c.e.Store.SnapshotPath(c.from.Name), n.Name)); err != nil {
		return fmt.Errorf("node %s: from snapshot %s: %w", n.Name, c.from.Name, err)
	}
	return c.update(func() { c.st.Nodes[n.Name].Provision = rec.Provision })
}
