package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/labctl/lab/provision"
	"github.com/labctl/lab/state"
	"github.com/labctl/lab/topology"
)

// Reprovision runs every provisioning step again on the named nodes, the
// nodes of one role, or (neither given) every node, in `after` order.
func (e *Engine) Reprovision(ctx context.Context, top *topology.Topology, nodes []string, role string) error {
	c, err := e.open(ctx, top, true)
	if err != nil {
		return err
	}
	defer c.close()
	pick := map[string]bool{}
	for _, name := range nodes {
		if c.lab.Node(name) == nil {
			return &UnknownNodeError{fmt.Sprintf("no node %q in lab %s", name, c.lab.Name)}
		}
		pick[name] = true
	}
	var chosen []topology.Node
	for _, n := range c.lab.Nodes {
		if (len(pick) > 0 && !pick[n.Name]) || (role != "" && n.Role != role) {
			continue
		}
		if c.st.Nodes[n.Name] == nil {
			return fmt.Errorf("node %s is not created yet: run lab up", n.Name)
		}
		chosen = append(chosen, n)
	}
	if err := os.MkdirAll(e.Store.LogDir(), 0o755); err != nil {
		return err
	}
	again := func(n topology.Node) func(context.Context) error {
		return func(ctx context.Context) error {
			prov, err := e.provider(n.Provider)
			if err != nil {
				return err
			}
			if err := c.writeFiles(ctx, n, prov, c.nodeTarget(n, nil)); err != nil {
				return err
			}
			return c.provisionNode(ctx, n, true)
		}
	}
	ue, err := c.runGraph(chosen, c.graph(chosen, nil, again))
	if err != nil {
		return err
	}
	return ue.orNil()
}

// provisionNode runs a node's steps (those that need running, or every one
// with force), then its health checks, and records the result.
func (c *call) provisionNode(ctx context.Context, n topology.Node, force bool) error {
	c.mu.Lock()
	rec := c.st.Nodes[n.Name]
	var prev *state.Provisioning
	if rec != nil && rec.Provision != nil {
		cp := *rec.Provision
		cp.Steps = append([]state.StepRecord(nil), rec.Provision.Steps...)
		prev = &cp
	}
	c.mu.Unlock()
	if rec == nil {
		return fmt.Errorf("node %s: not in the state", n.Name)
	}
	if len(n.Spec.Provision) == 0 && len(n.Spec.Health) == 0 {
		return c.update(func() {
			c.st.Nodes[n.Name].Provision = &state.Provisioning{Done: true, Finished: time.Now().UTC()}
			c.emit(n.Name, PhaseDone, "up")
		})
	}
	if c.e.Provisioner == nil {
		return fmt.Errorf("node %s: provisioning is not available in this build", n.Name)
	}
	logf, err := c.logFile(n.Name)
	if err != nil {
		return err
	}
	defer logf.Close()
	prov, err := c.e.provider(n.Provider)
	if err != nil {
		return err
	}
	req := provision.Request{
		Lab: c.lab, Node: n, Target: c.nodeTarget(n, nil), Provider: prov, Previous: prev, Force: force, Log: logf,
		Inventory: filepath.Join(c.e.Store.Dir, "inventory.ini"),
		Progress:  func(msg string) { c.emit(n.Name, PhaseProvision, "%s", msg) },
	}
	t := time.Now()
	if err := c.runSteps(ctx, req); err != nil {
		return err
	}
	if err := c.checkHealth(ctx, req); err != nil {
		return err
	}
	c.emit(n.Name, PhaseDone, "provisioned and healthy in %.1fs", time.Since(t).Seconds())
	return nil
}

func (c *call) runSteps(ctx context.Context, req provision.Request) error {
	res, err := c.e.Provisioner.Provision(ctx, req)
	if res != nil {
		if uerr := c.update(func() { c.st.Nodes[req.Node.Name].Provision = res }); uerr != nil && err == nil {
			err = uerr
		}
	}
	if err != nil {
		c.emit(req.Node.Name, PhaseFailed, "%v", err)
	}
	return err
}

// checkHealth runs the node's checks; a node is not done until healthy, so
// the next up checks again.
func (c *call) checkHealth(ctx context.Context, req provision.Request) error {
	n := req.Node
	if len(n.Spec.Health) == 0 {
		return nil
	}
	_, timeout := c.lab.Topology.Timeouts()
	c.emit(n.Name, PhaseHealth, "%d checks", len(n.Spec.Health))
	err := c.e.Provisioner.Health(ctx, req, timeout)
	if err != nil {
		_ = c.update(func() {
			if p := c.st.Nodes[n.Name].Provision; p != nil {
				p.Done = false
			}
		})
		c.emit(n.Name, PhaseFailed, "%v", err)
	}
	return err
}
