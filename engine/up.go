package engine

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/labctl/lab/image"
	"github.com/labctl/lab/plan"
	"github.com/labctl/lab/state"
	"github.com/labctl/lab/topology"
)

// UpOptions tune Up.
type UpOptions struct {
	Provision bool // run every provisioning step again
	// From makes a fresh lab from a whole-lab snapshot: nodes get their saved
	// disks and provisioning records, so only steps that changed (and those
	// with run: always) run. Force takes a snapshot the lab file differs from.
	From  string
	Force bool
	// TakeFrom: the snapshot goes once this up is over (lab test --from a
	// file), so nodes may take its disks instead of copying them.
	TakeFrom bool
}

// Up brings the lab to what the topology says.
func (e *Engine) Up(ctx context.Context, top *topology.Topology, opts UpOptions) (*plan.Plan, error) {
	c, err := e.open(ctx, top, true)
	if err != nil {
		return nil, err
	}
	defer c.close()
	if opts.From != "" {
		if err := c.useSnapshot(opts.From, opts.Force); err != nil {
			return nil, err
		}
		c.takeFrom = opts.TakeFrom
	}
	if err := c.finishRestores(); err != nil {
		return nil, err
	}
	if err := c.checkMembers(); err != nil {
		return nil, err
	}
	p := c.plan()
	if err := c.prepare(p); err != nil {
		return p, err
	}
	if err := c.dropFaultsOf(p.Nodes(plan.Destroy)); err != nil {
		return p, err
	}
	if err := c.destroyNodes(p.Nodes(plan.Destroy, plan.Replace)); err != nil {
		return p, err
	}
	images, err := c.buildImages(p)
	if err != nil {
		return p, err
	}
	err = c.runNodes(p, images, opts)
	if ctx.Err() != nil {
		return p, err
	}
	if perr := c.refreshPorts(); perr != nil && err == nil {
		err = perr
	}
	// Forwards go to nodes that run, even when some others failed; a
	// role's alias answers with those that run now.
	if ferr := c.syncForwards(); ferr != nil && err == nil {
		err = ferr
	}
	if derr := c.syncDNS(); derr != nil && err == nil {
		err = derr
	}
	return p, err
}

// down tells whether lab knows a node is not running: halted, or held by a
// kill or pause fault. A role's alias leaves it out.
func (c *call) down(node string) bool {
	if rec := c.st.Nodes[node]; rec == nil || rec.Phase == state.PhaseHalted || rec.Phase == state.PhaseCreating {
		return true
	}
	for _, f := range c.st.Faults {
		if (f.Kind == FaultPause || f.Kind == FaultKill) && slices.Contains(f.Nodes, node) {
			return true
		}
	}
	return false
}

// syncDNS gives every network's DNS the names it serves now.
func (c *call) syncDNS() error {
	for _, n := range c.lab.Networks {
		if c.providerOwns(n) {
			if err := c.setOwnedNames(n); err != nil {
				return err
			}
			continue
		}
		if c.e.Networks == nil {
			continue
		}
		if err := c.e.Networks.SetHosts(n.Bridge, c.lab.DNSNames(n.Name, c.down)); err != nil {
			return fmt.Errorf("network %s: dns names: %w", n.Name, err)
		}
	}
	return nil
}

// prepare does what comes before any node: the SSH key and host files, the
// checks that refuse a lab that cannot be made, and the networks.
func (c *call) prepare(p *plan.Plan) error {
	if err := c.checkLimits(); err != nil {
		return err
	}
	if _, err := c.ensureKey(); err != nil {
		return err
	}
	if err := c.writeHostFiles(); err != nil {
		return err
	}
	c.emit("", PhasePlan, "%d nodes: %d to create, %d to start, %d to destroy", len(c.lab.Nodes), len(p.Nodes(plan.Create, plan.Replace)), len(p.Nodes(plan.Start)), len(p.Nodes(plan.Destroy, plan.Replace)))
	if err := c.checkPorts(); err != nil {
		return err
	}
	if err := c.upNetworks(); err != nil {
		return err
	}
	// Before any node starts: no node ever runs unguarded.
	return c.applyPolicy()
}

// runNodes runs the graph of every node: boot, then provisioning in
// `after` order.
func (c *call) runNodes(p *plan.Plan, images map[string]*image.Image, opts UpOptions) error {
	actions := map[string]plan.Action{}
	for _, s := range p.Steps {
		actions[s.Node] = s.Action
	}
	if err := os.MkdirAll(c.e.Store.LogDir(), 0o755); err != nil {
		return err
	}
	boot := func(n topology.Node) func(context.Context) error {
		return func(ctx context.Context) error {
			if c.held(n.Name) {
				return nil
			}
			return c.bootNode(ctx, n, actions[n.Name], images[n.Name])
		}
	}
	prov := func(n topology.Node) func(context.Context) error {
		return func(ctx context.Context) error {
			if c.held(n.Name) {
				return nil
			}
			return c.provisionNode(ctx, n, opts.Provision)
		}
	}
	ue, err := c.runGraph(c.lab.Nodes, c.graph(c.lab.Nodes, boot, prov))
	if err != nil {
		return err
	}
	if c.ctx.Err() != nil {
		var half []string
		for _, name := range c.st.NodeNames() {
			if rec := c.st.Nodes[name]; rec.Phase == state.PhaseCreating || rec.Provision == nil || !rec.Provision.Done {
				half = append(half, name)
			}
		}
		return fmt.Errorf("interrupted; state saved; not finished: %s (lab up resumes, lab destroy removes): %w", strings.Join(half, ", "), c.ctx.Err())
	}
	return ue.orNil()
}

// held tells whether a pause or kill fault holds a node: up leaves it as
// the fault made it, and says so.
func (c *call) held(node string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.st.Faults {
		if (f.Kind == FaultPause || f.Kind == FaultKill) && len(f.Nodes) == 1 && f.Nodes[0] == node {
			c.emit(node, PhaseSkipped, "fault %s (%s) in force: lab fault heal %s", f.ID, f.Kind, f.ID)
			return true
		}
	}
	return false
}

// upNetworks makes the lab file's networks and removes those it no longer has.
func (c *call) upNetworks() error {
	st := c.st
	for _, n := range c.lab.Networks {
		if _, ok := st.Networks[n.Name]; !ok {
			owner, _ := c.ownerOf(n)
			// Recorded before it is made, so destroy finds a half-made network.
			if err := c.update(func() {
				st.Networks[n.Name] = &state.Network{Name: n.Name, Bridge: n.Bridge, Subnet: n.Subnet.String(), Domain: n.Domain, CreatedAt: time.Now().UTC(), Provider: owner}
			}); err != nil {
				return err
			}
		}
		if err := c.ensureNetwork(n); err != nil {
			return err
		}
	}
	for name, rec := range st.Networks {
		if c.lab.Network(name) != nil {
			continue
		}
		if err := c.removeNetwork(name, rec); err != nil {
			return err
		}
	}
	return nil
}

func (c *call) ensureNetwork(n topology.Net) error {
	if c.providerOwns(n) {
		return c.ensureOwned(n)
	}
	if c.e.Networks == nil {
		return nil
	}
	t := time.Now()
	if err := c.e.Networks.Ensure(c.ctx, c.lab.Name, netOf(n)); err != nil {
		c.emit("", PhaseFailed, "network %s: %v", n.Name, err)
		return err
	}
	if err := c.e.Networks.SetHosts(n.Bridge, c.lab.DNSNames(n.Name, c.down)); err != nil {
		return fmt.Errorf("network %s: dns names: %w", n.Name, err)
	}
	c.emit("", PhaseNetwork, "%s %s on %s, DNS *.%s (%.2fs)", n.Name, n.Subnet, n.Bridge, n.Domain, time.Since(t).Seconds())
	return nil
}

// providerOwns tells whether every node on a network is of a provider that
// makes its nodes' network itself (Info.OwnsNetwork): then lab makes no
// bridge for it.
func (c *call) providerOwns(n topology.Net) bool { return c.e.providerOwns(c.lab, n) }

func (e *Engine) providerOwns(lab *topology.Lab, n topology.Net) bool {
	owned := false
	for _, node := range lab.Nodes {
		for _, ifc := range node.Interfaces {
			if ifc.Network != n.Name {
				continue
			}
			p, err := e.provider(node.Provider)
			if err != nil || !p.Info().OwnsNetwork {
				return false
			}
			owned = true
		}
	}
	return owned
}

// removeNetwork takes a recorded network down and forgets it.
func (c *call) removeNetwork(name string, rec *state.Network) error {
	if rec.Provider != "" {
		if err := c.removeOwned(name, rec); err != nil {
			return err
		}
	} else if c.e.Networks != nil {
		if err := c.e.Networks.Remove(c.ctx, c.st.Lab, rec.Bridge); err != nil {
			return fmt.Errorf("network %s: %w", name, err)
		}
	}
	c.emit("", PhaseNetwork, "removed %s (%s)", name, rec.Bridge)
	return c.update(func() { delete(c.st.Networks, name) })
}
