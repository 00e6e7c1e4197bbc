package engine

import (
	"context"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/labctl/lab/state"
	"github.com/labctl/lab/topology"
)

// Halt stops nodes of the lab (all when none are named) and keeps them.
func (e *Engine) Halt(ctx context.Context, top *topology.Topology, nodes []string) error {
	c, err := e.open(ctx, top, true)
	if err != nil {
		return err
	}
	defer c.close()
	st := c.st
	if len(nodes) == 0 {
		// Forwards go with a halted lab; lab up starts them again.
		if err := c.stopForwards(); err != nil {
			return err
		}
	}
	want := map[string]bool{}
	for _, n := range nodes {
		if st.Nodes[n] == nil {
			return &UnknownNodeError{fmt.Sprintf("node %s: not in this lab (have: %s)", n, strings.Join(st.NodeNames(), ", "))}
		}
		want[n] = true
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(e.workers())
	for _, name := range st.NodeNames() {
		rec := st.Nodes[name]
		if len(want) > 0 && !want[name] {
			continue
		}
		g.Go(func() error {
			p, err := e.provider(rec.Provider)
			if err != nil {
				return err
			}
			t := time.Now()
			if err := p.Stop(gctx, e.recordTarget(st, rec)); err != nil {
				c.emit(rec.Name, PhaseFailed, "%v", err)
				return err
			}
			c.emit(rec.Name, PhaseStop, "halted (%.2fs)", time.Since(t).Seconds())
			return c.update(func() { rec.Phase = state.PhaseHalted })
		})
	}
	err = g.Wait()
	if derr := c.syncDNS(); derr != nil && err == nil {
		err = derr
	}
	return err
}
