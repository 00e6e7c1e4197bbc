// Package plan compares the lab a topology asks for with what the state says
// exists and what the provider reports, and says what `lab up` must do. It is
// a pure function: no machine is touched here.
package plan

import (
	"fmt"
	"sort"
	"strings"

	"github.com/labctl/lab/providers"
	"github.com/labctl/lab/state"
	"github.com/labctl/lab/topology"
)

// SchemaVersion is the version of the JSON `lab plan --json` prints.
const SchemaVersion = 1

// Action is what happens to one node.
type Action string

const (
	Create    Action = "create"    // make and start the node
	Replace   Action = "replace"   // destroy and create again (image or provider changed)
	Start     Action = "start"     // it exists, stopped
	Provision Action = "provision" // it runs, provisioning is not done
	Keep      Action = "keep"      // nothing to do
	Destroy   Action = "destroy"   // not in the topology any more
)

// Step is one node's action.
type Step struct {
	Node   string `json:"node"`
	Role   string `json:"role"`
	Index  int    `json:"index"`
	Action Action `json:"action"`
	Reason string `json:"reason,omitempty"`
	IP     string `json:"address,omitempty"`
}

// Plan is what `lab up` would do.
type Plan struct {
	Version  int           `json:"version"`
	Lab      string        `json:"lab"`
	Steps    []Step        `json:"steps"`
	Networks []NetworkStep `json:"networks"` // networks to create
	// Firewall lists guarded nodes whose rules up would set, change or lift.
	Firewall []FirewallStep `json:"firewall"`
}

// FirewallStep is a change of what one node accepts.
type FirewallStep struct {
	Node   string   `json:"node"`
	Action Action   `json:"action"` // create, replace (rules change), destroy (firewall lifted)
	Rules  []string `json:"rules"`  // what it will accept (empty: everything, after destroy)
}

// NetworkStep is a network `lab up` would make.
type NetworkStep struct {
	Network string `json:"network"`
	Action  Action `json:"action"`
	Bridge  string `json:"bridge"`
	Subnet  string `json:"subnet"`
	Address string `json:"address"`
}

// Observed maps node name to the provider's view of it.
type Observed map[string]providers.State

// Diff builds the plan. images maps node name to the image key the node
// would be built from now (nil: do not compare images).
func Diff(lab *topology.Lab, st *state.State, obs Observed, images map[string]string) *Plan {
	if st == nil {
		st = state.New(lab.Name, "")
	}
	p := &Plan{Version: SchemaVersion, Lab: lab.Name, Steps: []Step{}, Networks: []NetworkStep{}, Firewall: firewallSteps(lab, st)}
	for _, n := range lab.Networks {
		if _, ok := st.Networks[n.Name]; !ok {
			p.Networks = append(p.Networks, NetworkStep{Network: n.Name, Action: Create, Bridge: n.Bridge, Subnet: n.Subnet.String(), Address: n.Gateway.String()})
		}
	}
	want := map[string]bool{}
	for _, n := range lab.Nodes {
		want[n.Name] = true
		s := Step{Node: n.Name, Role: n.Role, Index: n.Index, IP: n.IP().String()}
		rec := st.Nodes[n.Name]
		o, seen := obs[n.Name]
		if !seen {
			o = providers.Unknown
		}
		switch {
		case rec == nil:
			s.Action, s.Reason = Create, "new node"
		case rec.Provider != n.Provider:
			s.Action, s.Reason = Replace, fmt.Sprintf("provider %s → %s", rec.Provider, n.Provider)
		case images != nil && rec.Image != "" && images[n.Name] != "" && rec.Image != images[n.Name]:
			s.Action, s.Reason = Replace, "image changed (packages, suite or mirror)"
		case rec.Unprivileged != n.Unprivileged:
			s.Action, s.Reason = Replace, map[bool]string{true: "privileged → unprivileged (a user namespace)", false: "unprivileged → privileged"}[n.Unprivileged]
		case rec.Phase == state.PhaseCreating || o == providers.Absent:
			s.Action, s.Reason = Create, "not created yet"
			if o == providers.Absent && rec.Phase != state.PhaseCreating {
				s.Reason = "gone from the provider"
			}
		case o == providers.Stopped:
			s.Action, s.Reason = Start, "stopped"
			if rec.Provision == nil || !rec.Provision.Done {
				s.Reason += ", then provision"
			}
		case rec.Provision == nil || !rec.Provision.Done:
			s.Action, s.Reason = Provision, "provisioning not done"
		default:
			s.Action = Keep
		}
		if f := stopped(st, n.Name); f != nil && (s.Action == Start || s.Action == Provision) {
			// lab up leaves faults in force: heal them with lab fault heal.
			s.Action, s.Reason = Keep, fmt.Sprintf("fault %s (%s) in force: lab fault heal %s", f.ID, f.Kind, f.ID)
		}
		p.Steps = append(p.Steps, s)
	}
	// Nodes to remove: highest index first within a role, so scale-down
	// removes pg3 before pg2.
	var gone []*state.Node
	for name, rec := range st.Nodes {
		if !want[name] {
			gone = append(gone, rec)
		}
	}
	sort.Slice(gone, func(i, j int) bool {
		if gone[i].Role != gone[j].Role {
			return gone[i].Role < gone[j].Role
		}
		return gone[i].Index > gone[j].Index
	})
	for _, rec := range gone {
		reason := "not in the topology"
		if lab.Topology != nil && lab.Topology.RoleByName(rec.Role) != nil {
			reason = "scaled down"
		}
		ip := ""
		if len(rec.Addresses) > 0 {
			ip = rec.Addresses[0]
		}
		p.Steps = append(p.Steps, Step{Node: rec.Name, Role: rec.Role, Index: rec.Index, Action: Destroy, Reason: reason, IP: ip})
	}
	return p
}

// stopped is a pause or kill fault in force on a node, or nil.
func stopped(st *state.State, node string) *state.Fault {
	for _, f := range st.Faults {
		if (f.Kind == "pause" || f.Kind == "kill") && len(f.Nodes) == 1 && f.Nodes[0] == node {
			return f
		}
	}
	return nil
}

// firewallSteps compares each node's rules with the ones in force.
func firewallSteps(lab *topology.Lab, st *state.State) []FirewallStep {
	out := []FirewallStep{}
	want := lab.FirewallLines()
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	for n := range st.Firewall {
		if _, ok := want[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		w, inWant := want[n]
		old, inForce := st.Firewall[n]
		switch {
		case !inWant:
			out = append(out, FirewallStep{Node: n, Action: Destroy, Rules: []string{}})
		case !inForce:
			out = append(out, FirewallStep{Node: n, Action: Create, Rules: w})
		case strings.Join(w, "\n") != strings.Join(old, "\n"):
			out = append(out, FirewallStep{Node: n, Action: Replace, Rules: w})
		}
	}
	return out
}

// Nodes returns the names of the nodes with one of the actions.
func (p *Plan) Nodes(actions ...Action) []string {
	var out []string
	for _, s := range p.Steps {
		for _, a := range actions {
			if s.Action == a {
				out = append(out, s.Node)
			}
		}
	}
	return out
}

// Changes tells whether the plan does anything.
func (p *Plan) Changes() bool {
	if len(p.Networks) > 0 || len(p.Firewall) > 0 {
		return true
	}
	for _, s := range p.Steps {
		if s.Action != Keep {
			return true
		}
	}
	return false
}

// String renders the plan for people.
func (p *Plan) String() string {
	var b strings.Builder
	for _, n := range p.Networks {
		fmt.Fprintf(&b, "  + network %-10s bridge %s %s\n", n.Network, n.Bridge, n.Subnet)
	}
	counts := map[Action]int{}
	for _, s := range p.Steps {
		counts[s.Action]++
		sign := map[Action]string{Create: "+", Replace: "±", Start: "▶", Provision: "~", Keep: "=", Destroy: "-"}[s.Action]
		line := fmt.Sprintf("  %s %-10s %-15s %-9s", sign, s.Node, s.IP, s.Action)
		if s.Reason != "" {
			line += " (" + s.Reason + ")"
		}
		b.WriteString(strings.TrimRight(line, " ") + "\n")
	}
	for _, f := range p.Firewall {
		what := map[Action]string{Create: "set", Replace: "change", Destroy: "lift (accepts everything)"}[f.Action]
		fmt.Fprintf(&b, "  # firewall %-10s %s\n", f.Node, what)
		for _, r := range f.Rules {
			fmt.Fprintf(&b, "      accept %s\n", r)
		}
	}
	fmt.Fprintf(&b, "%d to create, %d to replace, %d to start, %d to provision, %d to destroy, %d unchanged\n",
		counts[Create], counts[Replace], counts[Start], counts[Provision], counts[Destroy], counts[Keep])
	return b.String()
}
