package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/labctl/lab/internal/userns"
	"github.com/labctl/lab/plan"
	"github.com/labctl/lab/providers"
	"github.com/labctl/lab/state"
	"github.com/labctl/lab/topology"
)

// Clone gives node dst (of the lab file, usually of another role) src's
// disk: src is frozen for the copy when it runs, dst is made (or stopped)
// and started with the copy, gets its own identity back (name, address,
// hosts, facts), and runs the steps of its own role that differ from what
// src's record says ran.
func (e *Engine) Clone(ctx context.Context, top *topology.Topology, src, dst string) error {
	c, err := e.open(ctx, top, true)
	if err != nil {
		return err
	}
	defer c.close()
	srcRec, dstNode, p, err := c.checkClone(src, dst)
	if err != nil {
		return err
	}
	tmp, err := e.Store.NewSnapshotDir("clone")
	if err != nil {
		return err
	}
	defer userns.RemoveAll(tmp)
	frozen, err := c.copyDisks([]string{src}, tmp)
	if err != nil {
		return err
	}
	c.emit(src, PhaseSnapshot, "copied for %s (frozen %.2fs)", dst, frozen.Seconds())
	img, err := c.imageOf(*dstNode, p, srcRec.Image)
	if err != nil {
		return err
	}
	tgt := e.target(c.lab, *dstNode, img)
	if cur := c.st.Nodes[dst]; cur != nil {
		tgt.ID = cur.ID
		if err := p.(providers.Killer).Kill(ctx, tgt); err != nil {
			return err
		}
	} else if err := c.createNode(ctx, *dstNode, p, tgt); err != nil {
		return err
	}
	if err := p.(providers.Snapshotter).TakeDisk(ctx, tgt, state.NodeDir(tmp, src)); err != nil {
		return fmt.Errorf("node %s: clone of %s: %w", dst, src, err)
	}
	// What ran on src is what dst's disk has: only dst's differing steps run.
	prov := srcRec.Provision
	if err := c.update(func() { c.st.Nodes[dst].Provision, c.st.Nodes[dst].Image = prov, srcRec.Image }); err != nil {
		return err
	}
	t := time.Now()
	if err := c.bootNode(ctx, *dstNode, plan.Start, img); err != nil {
		return err
	}
	if err := c.refreshPorts(); err != nil {
		return err
	}
	if err := c.provisionNode(ctx, *dstNode, false); err != nil {
		return err
	}
	c.emit(dst, PhaseSnapshot, "a clone of %s (%.1fs)", src, time.Since(t).Seconds())
	return nil
}

// checkClone refuses what cannot be cloned: unknown nodes, a node onto
// itself, different providers or images.
func (c *call) checkClone(src, dst string) (*state.Node, *topology.Node, providers.Provider, error) {
	srcRec := c.st.Nodes[src]
	if srcRec == nil {
		if c.lab.Node(src) != nil {
			return nil, nil, nil, usagef("clone: node %s is not created yet: run lab up", src)
		}
		return nil, nil, nil, &UnknownNodeError{fmt.Sprintf("no node %q in lab %s", src, c.lab.Name)}
	}
	dstNode := c.lab.Node(dst)
	switch {
	case dstNode == nil:
		return nil, nil, nil, &UnknownNodeError{fmt.Sprintf("clone: no node %q in the lab file (the clone must be one of its nodes)", dst)}
	case src == dst:
		return nil, nil, nil, usagef("clone: a node onto itself")
	case dstNode.Provider != srcRec.Provider:
		return nil, nil, nil, usagef("clone: %s is %s, %s is %s: a disk moves between nodes of one provider", src, srcRec.Provider, dst, dstNode.Provider)
	case dstNode.Unprivileged != srcRec.Unprivileged:
		return nil, nil, nil, usagef("clone: %s is %s, %s is %s: the owners of a disk's files are those of its user namespace; give the roles the same privileged:", src, privilegeOf(srcRec.Unprivileged), dst, privilegeOf(dstNode.Unprivileged))
	}
	p, err := c.e.provider(srcRec.Provider)
	if err != nil {
		return nil, nil, nil, err
	}
	if key := c.e.imageSpec(*dstNode, p).Key(); key != srcRec.Image {
		return nil, nil, nil, usagef("clone: %s is made from image %s, %s from %s: give their roles the same packages", src, srcRec.Image, dst, key)
	}
	_, isSnap := p.(providers.Snapshotter)
	_, isKill := p.(providers.Killer)
	if !isSnap || !isKill {
		return nil, nil, nil, usagef("clone: provider %s cannot copy disks", p.Name())
	}
	return srcRec, dstNode, p, nil
}

func privilegeOf(unprivileged bool) string {
	if unprivileged {
		return "unprivileged"
	}
	return "privileged"
}
