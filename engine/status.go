package engine

import (
	"context"
	"fmt"
	"sort"

	"github.com/labctl/lab/state"
	"github.com/labctl/lab/topology"
)

// NodeStatus is one node as `lab status` shows it.
type NodeStatus struct {
	Name      string   `json:"name"`
	Role      string   `json:"role"`
	Provider  string   `json:"provider"`
	ID        string   `json:"id,omitempty"`
	State     string   `json:"state"`
	Addresses []string `json:"addresses"`
	// Addresses6 are its IPv6 addresses (on dual-stack networks).
	Addresses6 []string `json:"addresses6,omitempty"`
	FQDN       string   `json:"fqdn,omitempty"`
	// Provisioned: "done", "failed", "pending" or "" when not created.
	Provisioned string `json:"provisioned,omitempty"`
	Note        string `json:"note,omitempty"`
	// Firewall is what the node accepts, as in force; absent: everything.
	Firewall []string `json:"firewall,omitempty"`
	// Faults are the ids of the faults in force on the node.
	Faults []string `json:"faults,omitempty"`
	// Privileged: a container node whose root is root on the host.
	Privileged bool `json:"privileged,omitempty"`
	// Member is the cluster member the node lives on (provider lxd).
	Member string `json:"member,omitempty"`
}

// Status reports every node of the topology and every recorded node.
func (e *Engine) Status(ctx context.Context, top *topology.Topology) ([]NodeStatus, *topology.Lab, error) {
	c, err := e.open(ctx, top, false)
	if err != nil {
		return nil, nil, err
	}
	lab, st := c.lab, c.st
	obs := c.observe()
	var out []NodeStatus
	for _, n := range lab.Nodes {
		s := NodeStatus{Name: n.Name, Role: n.Role, Provider: n.Provider, State: "not created", FQDN: lab.FQDN(n),
			Privileged: e.sharesKernel(n.Provider) && !n.Unprivileged}
		for _, ifc := range n.Interfaces {
			s.Addresses = append(s.Addresses, ifc.Addr.String())
			if ifc.Addr6.IsValid() {
				s.Addresses6 = append(s.Addresses6, ifc.Addr6.String())
			}
		}
		if rec := st.Nodes[n.Name]; rec != nil {
			s.ID, s.Provider = rec.ID, rec.Provider
			s.State = string(obs[n.Name])
			s.Provisioned, s.Note = recordStatus(rec, n)
			s.Privileged = e.sharesKernel(rec.Provider) && !rec.Unprivileged
			s.Firewall, s.Faults = st.Firewall[n.Name], faultsOn(st, n.Name)
		}
		out = append(out, s)
	}
	for _, name := range st.NodeNames() {
		if lab.Node(name) != nil {
			continue
		}
		rec := st.Nodes[name]
		out = append(out, NodeStatus{Name: name, Role: rec.Role, Provider: rec.Provider, ID: rec.ID, State: string(obs[name]),
			Addresses: rec.Addresses, Note: "not in the lab file: lab up destroys it", Privileged: e.sharesKernel(rec.Provider) && !rec.Unprivileged})
	}
	c.locate(out)
	return out, lab, nil
}

// sharesKernel tells whether a provider's nodes are containers of this
// host (whose root is the host's unless they are unprivileged).
func (e *Engine) sharesKernel(provider string) bool {
	p, err := e.provider(provider)
	return err == nil && p.Info().SharesKernel
}

// faultsOn lists the ids of the faults in force on a node.
func faultsOn(st *state.State, node string) []string {
	var out []string
	for id, f := range st.Faults {
		for _, n := range f.Nodes {
			if n == node {
				out = append(out, id)
			}
		}
	}
	sort.Strings(out)
	return out
}

// recordStatus is what the record says of a node's provisioning, and a note.
func recordStatus(rec *state.Node, n topology.Node) (provisioned, note string) {
	provisioned = "pending"
	if rec.Provision != nil {
		provisioned = "failed"
		if rec.Provision.Done {
			provisioned = "done"
		}
	}
	if rec.Phase == state.PhaseCreating {
		note = "half-created: lab up finishes it"
	}
	if rec.Restoring != "" {
		note = fmt.Sprintf("its restore of snapshot %s was interrupted: lab up finishes it", rec.Restoring)
	}
	if rec.Unprivileged != n.Unprivileged {
		note = fmt.Sprintf("the lab file says %s: lab up replaces it", privilegeOf(n.Unprivileged))
	}
	if rec.Provider != n.Provider {
		note = fmt.Sprintf("the lab file says %s: lab up replaces it", n.Provider)
	}
	return provisioned, note
}

// Report is everything lab status says, as lab status --json prints it.
type Report struct {
	Version  int             `json:"version"`
	Lab      string          `json:"lab"`
	Networks []topology.Net  `json:"networks"`
	Nodes    []NodeStatus    `json:"nodes"`
	Forwards []state.Forward `json:"forwards"`
	Faults   []state.Fault   `json:"faults"`
}

// Report gathers the lab's status, forwards and faults.
func (e *Engine) Report(ctx context.Context, top *topology.Topology) (*Report, *topology.Lab, error) {
	ns, lab, err := e.Status(ctx, top)
	if err != nil {
		return nil, nil, err
	}
	fw, err := e.Forwards()
	if err != nil {
		return nil, nil, err
	}
	faults, err := e.Faults(ctx, top)
	if err != nil {
		return nil, nil, err
	}
	return &Report{Version: 1, Lab: lab.Name, Networks: lab.Networks, Nodes: ns, Forwards: fw, Faults: faults}, lab, nil
}
