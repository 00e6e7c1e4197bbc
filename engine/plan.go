package engine

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/labctl/lab/network"
	"github.com/labctl/lab/plan"
	"github.com/labctl/lab/providers"
	"github.com/labctl/lab/topology"
)

// Plan says what Up would do, without changing anything; what Up would
// refuse (a taken host port, a subnet another lab routes), Plan refuses too.
func (e *Engine) Plan(ctx context.Context, top *topology.Topology) (*plan.Plan, *topology.Lab, error) {
	c, err := e.open(ctx, top, false)
	if err != nil {
		return nil, nil, err
	}
	if err := c.preflight(); err != nil {
		return nil, nil, err
	}
	return c.plan(), c.lab, nil
}

// plan diffs the lab file against the state and what providers observe.
func (c *call) plan() *plan.Plan {
	return plan.Diff(c.lab, c.st, c.observe(), c.e.imageKeys(c.lab))
}

// preflight runs the checks up makes before it changes anything.
func (c *call) preflight() error {
	if err := c.checkPorts(); err != nil {
		return err
	}
	if c.e.Networks == nil {
		return nil
	}
	for _, n := range c.lab.Networks {
		if c.providerOwns(n) {
			continue // not this host's to make
		}
		if err := c.e.Networks.Preflight(c.ctx, c.lab.Name, netOf(n)); err != nil {
			return err
		}
	}
	return nil
}

func netOf(n topology.Net) network.Net {
	return network.Net{Bridge: n.Bridge, Subnet: n.Subnet, Gateway: n.Gateway, Subnet6: n.Subnet6, Gateway6: n.Gateway6, Domain: n.Domain}
}

// remoteStateWait is how long observe waits for a remote node's state.
var remoteStateWait = 5 * time.Second

// observe asks providers for the state of every recorded node.
func (c *call) observe() plan.Observed {
	obs := plan.Observed{}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(c.ctx)
	g.SetLimit(8)
	where := c.locations()
	for _, rec := range c.st.Nodes {
		g.Go(func() error {
			s := providers.Unknown
			// A node whose member is offline: asking would only time out.
			loc, placed := where[rec.Name]
			if p, err := c.e.provider(rec.Provider); err == nil && (!placed || loc.Online) {
				ctx, cancel := gctx, context.CancelFunc(func() {})
				if p.Info().Remote {
					// A member going offline holds an answer for as long as
					// its cluster waits (LXD: 30 s); the node is unknown then.
					ctx, cancel = context.WithTimeout(gctx, remoteStateWait)
				}
				if got, err := p.State(ctx, c.e.recordTarget(c.st, rec)); err == nil {
					s = got
				}
				cancel()
			}
			mu.Lock()
			obs[rec.Name] = s
			mu.Unlock()
			return nil
		})
	}
	_ = g.Wait()
	return obs
}
