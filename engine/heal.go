package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/labctl/lab/network"
	"github.com/labctl/lab/providers"
	"github.com/labctl/lab/state"
	"github.com/labctl/lab/topology"
)

// Faults lists the faults in force, by id.
func (e *Engine) Faults(ctx context.Context, top *topology.Topology) ([]state.Fault, error) {
	c, err := e.open(ctx, top, false)
	if err != nil {
		return nil, err
	}
	return sortedFaults(c.st), nil
}

func sortedFaults(st *state.State) []state.Fault {
	out := []state.Fault{}
	for _, f := range st.Faults {
		out = append(out, *f)
	}
	sort.Slice(out, func(i, j int) bool { return faultNum(out[i].ID) < faultNum(out[j].ID) })
	return out
}

func faultNum(id string) int {
	var n int
	fmt.Sscanf(id, "f%d", &n)
	return n
}

// Heal undoes the named faults (all with all) and returns their ids.
func (e *Engine) Heal(ctx context.Context, top *topology.Topology, ids []string, all bool) ([]string, error) {
	c, err := e.open(ctx, top, true)
	if err != nil {
		return nil, err
	}
	defer c.close()
	if all {
		ids = nil
		for _, f := range sortedFaults(c.st) {
			ids = append(ids, f.ID)
		}
	}
	for _, id := range ids {
		if c.st.Faults[id] == nil {
			return nil, usagef("no fault %q in force (lab fault list)", id)
		}
	}
	var healed []string
	var errs []error
	for _, id := range ids {
		t := time.Now()
		if err := c.heal(c.st.Faults[id]); err != nil {
			errs = append(errs, fmt.Errorf("fault %s: %w", id, err))
			continue
		}
		healed = append(healed, id)
		c.emit("", PhaseFault, "%s healed (%.3fs)", id, time.Since(t).Seconds())
	}
	return healed, errors.Join(errs...)
}

// heal undoes one fault and forgets it.
func (c *call) heal(f *state.Fault) error {
	var err error
	switch f.Kind {
	case FaultPartition:
		if err = c.update(func() { delete(c.st.Faults, f.ID) }); err != nil {
			return err
		}
		if err = c.applyPolicy(); err != nil {
			_ = c.update(func() { c.st.Faults[f.ID] = f }) // still in force
		}
		return err
	case FaultDelay:
		err = c.stopDelay(f.ID, c.ports(f.Nodes[0]), f.PID)
	case FaultPause:
		p, n, perr := c.nodeProvider(f.Nodes[0])
		if perr != nil {
			return perr
		}
		if pp, ok := p.(providers.Pauser); ok {
			err = pp.Resume(c.ctx, n)
		}
	case FaultKill:
		err = c.restart(f.Nodes[0])
	}
	if err != nil {
		return err
	}
	if err := c.update(func() { delete(c.st.Faults, f.ID) }); err != nil {
		return err
	}
	return c.syncDNS() // a role's alias answers with the node again
}

// stopDelay ends a delay line: through the Networks when it runs them.
func (c *call) stopDelay(id string, ports []string, pid int) error {
	if dl, ok := c.e.Networks.(Delays); ok {
		return dl.StopDelay(c.ctx, c.st.Lab, id, ports, pid)
	}
	return network.StopDelayLine(c.ctx, c.st.Lab, id, ports, pid)
}

// restart boots a killed node again, within the boot timeout.
func (c *call) restart(name string) error {
	p, n, err := c.nodeProvider(name)
	if err != nil {
		return err
	}
	if node := c.lab.Node(name); node != nil {
		n = c.e.target(c.lab, *node, nil)
		n.ID = c.st.Nodes[name].ID
	}
	boot, _ := c.lab.Topology.Timeouts()
	ctx, cancel := context.WithTimeout(c.ctx, boot)
	defer cancel()
	if err := p.Start(ctx, n); err != nil {
		return err
	}
	if pn, ok := p.(providers.PortNamer); ok && pn.NamesPorts() {
		return c.applyPolicy() // its anti-spoofing rules name its new ports
	}
	return nil
}

// dropFaultsOf forgets the faults on nodes that are being destroyed (a
// scale-down): their delay lines stop; partitions that named the node go.
func (c *call) dropFaultsOf(nodes []string) error {
	gone := map[string]bool{}
	for _, n := range nodes {
		gone[n] = true
	}
	for _, f := range sortedFaults(c.st) {
		hit := false
		for _, t := range f.Targets {
			hit = hit || gone[t]
		}
		if !hit {
			continue
		}
		if f.Kind == FaultDelay {
			_ = c.stopDelay(f.ID, c.portsOfRecord(f.Nodes[0]), f.PID)
		}
		id := f.ID
		if err := c.update(func() { delete(c.st.Faults, id) }); err != nil {
			return err
		}
		c.emit("", PhaseFault, "%s removed with %v", id, f.Targets)
	}
	return nil
}

// portsOfRecord are a recorded node's ports, from its addresses (the node
// may no longer be in the lab file).
func (c *call) portsOfRecord(node string) []string {
	rec := c.st.Nodes[node]
	if rec == nil {
		return nil
	}
	return c.nodePorts(node, len(rec.Addresses))
}
