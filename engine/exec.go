package engine

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/labctl/lab/providers"
	"github.com/labctl/lab/provision"
	"github.com/labctl/lab/topology"
)

// Target is a created node, ready for exec and ssh.
type Target struct {
	Provider providers.Provider
	Node     providers.Node
	Env      []string // the node's LAB_* facts ("" when not in the lab file)
}

// Target returns the provider and target of a created node, for exec and ssh.
func (e *Engine) Target(ctx context.Context, top *topology.Topology, node string) (*Target, error) {
	c, err := e.open(ctx, top, false)
	if err != nil {
		return nil, err
	}
	return c.target(node)
}

func (c *call) target(node string) (*Target, error) {
	rec := c.st.Nodes[node]
	if rec == nil {
		if c.lab.Node(node) != nil {
			return nil, fmt.Errorf("node %s is not created yet: run lab up", node)
		}
		var names []string
		for _, n := range c.lab.Nodes {
			names = append(names, n.Name)
		}
		return nil, &UnknownNodeError{fmt.Sprintf("no node %q in lab %s (nodes: %s)", node, c.lab.Name, strings.Join(names, ", "))}
	}
	p, err := c.e.provider(rec.Provider)
	if err != nil {
		return nil, err
	}
	t := &Target{Provider: p, Node: c.e.recordTarget(c.st, rec)}
	if n := c.lab.Node(node); n != nil {
		t.Node = c.e.target(c.lab, *n, nil)
		t.Node.ID = rec.ID
		t.Env = provision.Env(provision.Facts(c.lab, *n))
	}
	return t, nil
}

// ExecResult is how a command ended on one node.
type ExecResult struct {
	Node string
	Code int
	Err  error // it could not run at all
}

// ExecRole runs cmd on every node of a role in parallel, each with its own
// output writers (out gives them per node), and returns each node's result
// in the lab file's order.
func (e *Engine) ExecRole(ctx context.Context, top *topology.Topology, role string, cmd []string, out func(node string) (stdout, stderr io.Writer)) ([]ExecResult, error) {
	c, err := e.open(ctx, top, false)
	if err != nil {
		return nil, err
	}
	nodes := c.lab.RoleNodes(role)
	results := make([]ExecResult, len(nodes))
	var mu sync.Mutex
	var g errgroup.Group
	for i, n := range nodes {
		g.Go(func() error {
			r := ExecResult{Node: n.Name}
			t, err := c.target(n.Name)
			if err == nil {
				stdout, stderr := out(n.Name)
				r.Code, err = t.Provider.Exec(ctx, t.Node, cmd, providers.ExecIO{Stdout: stdout, Stderr: stderr, Env: t.Env})
			}
			r.Err = err
			mu.Lock()
			results[i] = r
			mu.Unlock()
			return nil
		})
	}
	_ = g.Wait()
	return results, nil
}
