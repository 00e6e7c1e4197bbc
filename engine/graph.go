package engine

import (
	"context"
	"errors"

	"github.com/labctl/lab/topology"
)

// step makes the function a graph task runs for one node.
type step func(n topology.Node) func(ctx context.Context) error

// graph is the `after` graph, written once for up and provision: for each
// node, node:X (boot, when given) and then provision:X, which also waits for
// the provisioning of every node of X's `after` roles that is in the graph.
func (c *call) graph(nodes []topology.Node, boot, prov step) []Task {
	in := map[string]bool{}
	for _, n := range nodes {
		in[n.Name] = true
	}
	var tasks []Task
	for _, n := range nodes {
		var deps []string
		if boot != nil {
			tasks = append(tasks, Task{ID: "node:" + n.Name, Run: boot(n)})
			deps = append(deps, "node:"+n.Name)
		}
		for _, after := range n.Spec.After {
			for _, m := range c.lab.RoleNodes(after) {
				if in[m.Name] {
					deps = append(deps, "provision:"+m.Name)
				}
			}
		}
		tasks = append(tasks, Task{ID: "provision:" + n.Name, Deps: deps, Run: prov(n)})
	}
	return tasks
}

// runGraph runs a graph and gathers what failed and what was skipped, by
// node, in the lab file's order.
func (c *call) runGraph(nodes []topology.Node, tasks []Task) (*UpError, error) {
	results, err := RunGraph(c.ctx, tasks, c.e.workers())
	if err != nil {
		return nil, err
	}
	ue := &UpError{}
	for _, n := range nodes {
		if bootErr, ok := results["node:"+n.Name]; ok && bootErr != nil {
			ue.add(n.Name, bootErr) // its provisioning was skipped for it: said once
			continue
		}
		perr := results["provision:"+n.Name]
		if errors.Is(perr, ErrSkipped) {
			c.emit(n.Name, PhaseSkipped, "%v", perr)
		}
		ue.add(n.Name, perr)
	}
	return ue, nil
}
