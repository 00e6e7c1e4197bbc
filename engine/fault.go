package engine

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/labctl/lab/network"
	"github.com/labctl/lab/providers"
	"github.com/labctl/lab/state"
	"github.com/labctl/lab/topology"
)

// Fault kinds.
const (
	FaultPartition = "partition"
	FaultDelay     = "delay"
	FaultPause     = "pause"
	FaultKill      = "kill"
)

// FaultRequest is one fault to put in force.
type FaultRequest struct {
	Kind string
	// Targets: partition, the two sides (nodes, roles or networks); delay,
	// pause and kill, one node.
	Targets []string
	OneWay  bool          // partition: drop A → B only
	Delay   network.Delay // delay
	To      string        // delay: only traffic from this node or role
}

// UsageError is a request the lab cannot take: the user's mistake (exit 2).
type UsageError struct{ msg string }

func (e *UsageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &UsageError{fmt.Sprintf(format, args...)} }

// Fault puts a fault in force and records it; it returns the record.
func (e *Engine) Fault(ctx context.Context, top *topology.Topology, r FaultRequest) (*state.Fault, error) {
	c, err := e.open(ctx, top, true)
	if err != nil {
		return nil, err
	}
	defer c.close()
	f, err := c.newFault(r)
	if err != nil {
		return nil, err
	}
	t := time.Now()
	// Recorded first: destroy finds a fault whatever happens next.
	if err := c.update(func() { c.st.Faults[f.ID] = f; c.st.NextFault++ }); err != nil {
		return nil, err
	}
	if err := c.applyFault(f, r); err != nil {
		_ = c.update(func() { delete(c.st.Faults, f.ID) })
		return nil, err
	}
	c.emit("", PhaseFault, "%s %s %s in force (%.3fs)", f.ID, f.Kind, strings.Join(f.Targets, " "), time.Since(t).Seconds())
	if f.Kind == FaultKill || f.Kind == FaultPause {
		if err := c.syncDNS(); err != nil { // a role's alias leaves the node out
			return f, err
		}
	}
	return f, c.update(func() {})
}

// newFault checks a request and makes its record.
func (c *call) newFault(r FaultRequest) (*state.Fault, error) {
	f := &state.Fault{ID: fmt.Sprintf("f%d", c.st.NextFault+1), Kind: r.Kind, Targets: r.Targets, Params: map[string]string{}, Since: time.Now().UTC()}
	switch r.Kind {
	case FaultPartition:
		if err := c.checkPartition(f, r); err != nil {
			return nil, err
		}
	case FaultDelay, FaultPause, FaultKill:
		if len(r.Targets) != 1 {
			return nil, usagef("fault %s: name one node", r.Kind)
		}
		if err := c.runningNode(r.Targets[0]); err != nil {
			return nil, err
		}
		f.Nodes = r.Targets
		if r.Kind == FaultDelay {
			if err := c.checkDelay(f, r); err != nil {
				return nil, err
			}
		}
	default:
		return nil, usagef("no fault %q (have: partition, delay, pause, kill)", r.Kind)
	}
	if err := c.hostShaped(f); err != nil {
		return nil, err
	}
	for _, old := range c.st.Faults {
		if sameFault(old, f) {
			return nil, usagef("fault %s %s is in force already as %s (lab fault heal %s)", f.Kind, strings.Join(f.Targets, " "), old.ID, old.ID)
		}
	}
	return f, nil
}

func sameFault(a, b *state.Fault) bool {
	if a.Kind != b.Kind {
		return false
	}
	if a.Kind == FaultPartition && a.Params["oneway"] != "true" && b.Params["oneway"] != "true" {
		x, y := slices.Clone(a.Targets), slices.Clone(b.Targets)
		sort.Strings(x)
		sort.Strings(y)
		return slices.Equal(x, y)
	}
	// Delay, pause and kill: one of each on a node at a time.
	return slices.Equal(a.Targets, b.Targets) && (a.Kind != FaultPartition || a.Params["oneway"] == b.Params["oneway"])
}

// runningNode refuses a node the lab does not have, or that does not run.
func (c *call) runningNode(name string) error {
	if c.lab.Node(name) == nil {
		return &UnknownNodeError{fmt.Sprintf("no node %q in lab %s", name, c.lab.Name)}
	}
	rec := c.st.Nodes[name]
	if rec == nil {
		return fmt.Errorf("node %s is not created yet: run lab up", name)
	}
	return nil
}

// members resolves a side of a partition to node names.
func (c *call) members(name string) ([]string, error) {
	var out []string
	switch {
	case c.lab.Node(name) != nil:
		out = []string{name}
	case len(c.lab.RoleNodes(name)) > 0:
		for _, n := range c.lab.RoleNodes(name) {
			out = append(out, n.Name)
		}
	case c.lab.Network(name) != nil:
		for _, n := range c.lab.Nodes {
			for _, ifc := range n.Interfaces {
				if ifc.Network == name {
					out = append(out, n.Name)
					break
				}
			}
		}
	default:
		return nil, &UnknownNodeError{fmt.Sprintf("no node, role or network %q in lab %s", name, c.lab.Name)}
	}
	return out, nil
}

func (c *call) checkPartition(f *state.Fault, r FaultRequest) error {
	if len(r.Targets) != 2 {
		return usagef("fault partition: name two sides: lab fault partition A B")
	}
	a, err := c.members(r.Targets[0])
	if err != nil {
		return err
	}
	b, err := c.members(r.Targets[1])
	if err != nil {
		return err
	}
	for _, n := range a {
		if slices.Contains(b, n) {
			return usagef("fault partition: %s is on both sides (a node cannot be cut from itself)", n)
		}
	}
	if r.OneWay {
		f.Params["oneway"] = "true"
	}
	f.Nodes = append(a, b...)
	return nil
}

func (c *call) checkDelay(f *state.Fault, r FaultRequest) error {
	d := r.Delay
	switch {
	case d.Delay < 0 || d.Jitter < 0:
		return usagef("fault delay: a delay cannot be negative")
	case d.Loss < 0 || d.Loss > 1:
		return usagef("fault delay: --loss is a share from 0%% to 100%%")
	case d.Rate < 0:
		return usagef("fault delay: --rate cannot be negative")
	case d.Delay == 0 && d.Loss == 0 && d.Rate == 0:
		return usagef("fault delay: nothing to do: give a delay, --loss or --rate")
	case d.Delay > time.Minute || d.Jitter > time.Minute:
		return usagef("fault delay: at most 1m")
	}
	f.Params["delay"], f.Params["jitter"] = d.Delay.String(), d.Jitter.String()
	f.Params["loss"], f.Params["rate"] = strconv.FormatFloat(d.Loss, 'f', -1, 64), strconv.FormatInt(d.Rate, 10)
	if r.To != "" {
		to, err := c.members(r.To)
		if err != nil {
			return err
		}
		if slices.Contains(to, f.Nodes[0]) {
			return usagef("fault delay: --to %s includes %s itself", r.To, f.Nodes[0])
		}
		f.Params["to"] = r.To
	}
	return nil
}

// applyFault puts a recorded fault in force.
func (c *call) applyFault(f *state.Fault, r FaultRequest) error {
	switch f.Kind {
	case FaultPartition:
		return c.applyPolicy()
	case FaultDelay:
		return c.startDelay(f, r.Delay)
	case FaultPause:
		p, n, err := c.nodeProvider(f.Nodes[0])
		if err != nil {
			return err
		}
		pp, ok := p.(providers.Pauser)
		if !ok {
			return usagef("fault pause: provider %s cannot pause nodes", p.Name())
		}
		return pp.Pause(c.ctx, n)
	case FaultKill:
		p, n, err := c.nodeProvider(f.Nodes[0])
		if err != nil {
			return err
		}
		k, ok := p.(providers.Killer)
		if !ok {
			return usagef("fault kill: provider %s cannot kill nodes", p.Name())
		}
		return k.Kill(c.ctx, n)
	}
	return nil
}

func (c *call) nodeProvider(name string) (providers.Provider, providers.Node, error) {
	rec := c.st.Nodes[name]
	p, err := c.e.provider(rec.Provider)
	if err != nil {
		return nil, providers.Node{}, err
	}
	return p, c.e.recordTarget(c.st, rec), nil
}

// ports are a node's host-side interfaces.
func (c *call) ports(node string) []string {
	return c.nodePorts(node, len(c.lab.Node(node).Interfaces))
}

func (c *call) startDelay(f *state.Fault, d network.Delay) error {
	var from []netip.Addr
	if to := f.Params["to"]; to != "" {
		from = c.addrsOf(to)
	}
	start := network.StartDelayLine
	if dl, ok := c.e.Networks.(Delays); ok {
		start = dl.StartDelay
	}
	pid, err := start(c.ctx, c.lab.Name, f.ID, c.ports(f.Nodes[0]), from, d, c.e.Store.LogDir())
	if err != nil {
		return err
	}
	f.PID = pid
	return nil
}
