package engine

import (
	"net/netip"
	"sort"
	"strings"

	"github.com/labctl/lab/network"
	"github.com/labctl/lab/providers"
	"github.com/labctl/lab/topology"
)

// policy is what the lab's bridges enforce now: every node's port sends
// only as the node, the guarded nodes' rules, and the partitions in force.
func (c *call) policy() network.Policy {
	p := network.Policy{Lab: c.lab.Name, Bridges: map[string]bool{}}
	p.Cuts = c.cuts()
	for _, n := range c.lab.Networks {
		if !c.providerOwns(n) { // a provider's network is not this host's to guard
			p.Bridges[n.Bridge] = len(p.Cuts) > 0
		}
	}
	for _, n := range c.lab.Nodes {
		if c.onOwned(n) {
			continue // it guards itself (guardInside)
		}
		names := c.nodePorts(n.Name, len(n.Interfaces))
		for i, ifc := range n.Interfaces {
			if names == nil {
				// Its ports are named when it starts: its anti-spoofing
				// rules come then (refreshPorts); its guard holds now.
				break
			}
			p.Ports = append(p.Ports, network.Port{Node: n.Name, Name: names[i], Bridge: ifc.Bridge, Addr: ifc.Addr, Addr6: ifc.Addr6, Floating: c.lab.FloatingOn(n, ifc.Network)})
			if n.Spec.HasFirewall() {
				p.Bridges[ifc.Bridge] = true
			}
		}
		if n.Spec.HasFirewall() {
			p.Guards = append(p.Guards, c.guards(n)...)
		}
	}
	return p
}

// guards are a node's rules, one guard per network it is on: each source
// stands for its addresses on that network.
func (c *call) guards(n topology.Node) []network.Guard {
	var out []network.Guard
	for _, ifc := range n.Interfaces {
		g := network.Guard{Node: n.Name, Addr: ifc.Addr, Addr6: ifc.Addr6, Floating: c.lab.FloatingOn(n, ifc.Network)}
		for _, rule := range n.Spec.Firewall {
			a := network.Allowed{ICMP: rule.Allow.ICMP, TCP: ports(rule.Allow.TCP), UDP: ports(rule.Allow.UDP)}
			for _, f := range rule.Allow.From {
				addrs, host := c.lab.Sources(f, ifc.Network)
				a.From = append(a.From, addrs...)
				a.Host = a.Host || host
			}
			g.Allow = append(g.Allow, a)
		}
		out = append(out, g)
	}
	return out
}

func ports(ps []topology.PortRange) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

// cuts are the partition faults in force, with their sides' addresses.
func (c *call) cuts() []network.Cut {
	var out []network.Cut
	ids := make([]string, 0, len(c.st.Faults))
	for id, f := range c.st.Faults {
		if f.Kind == FaultPartition {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		f := c.st.Faults[id]
		if len(f.Targets) != 2 {
			continue
		}
		cut := network.Cut{ID: id, From: c.addrsOf(f.Targets[0]), To: c.addrsOf(f.Targets[1]), OneWay: f.Params["oneway"] == "true"}
		if len(cut.From) > 0 && len(cut.To) > 0 {
			out = append(out, cut)
		}
	}
	return out
}

// addrsOf is every address of a node, role or network, on any network.
func (c *call) addrsOf(name string) []netip.Addr {
	var out []netip.Addr
	for _, net := range c.lab.Networks {
		addrs, _ := c.lab.Sources(name, net.Name)
		for _, a := range addrs {
			if a.IsSingleIP() {
				out = append(out, a.Addr())
				continue
			}
			if a.Addr().Is6() {
				continue // a network's IPv6 half: its nodes come with the IPv4 half
			}
			for _, n := range c.lab.Nodes { // a network: its nodes
				for _, ifc := range n.Interfaces {
					if ifc.Network == net.Name {
						out = append(out, ifc.Addr)
						if ifc.Addr6.IsValid() {
							out = append(out, ifc.Addr6)
						}
					}
				}
			}
		}
	}
	return out
}

// nodePorts are the host-side interfaces of a node's count interfaces:
// as its provider named them when it started (providers.PortNamer; nil
// while it is not running), else PortName's.
func (c *call) nodePorts(node string, count int) []string {
	rec, provider := c.st.Nodes[node], ""
	if rec != nil {
		provider = rec.Provider
	} else if n := c.lab.Node(node); n != nil {
		provider = n.Provider
	}
	if p, err := c.e.provider(provider); err == nil {
		if pn, ok := p.(providers.PortNamer); ok && pn.NamesPorts() {
			if rec == nil {
				return nil // not made yet
			}
			names, err := pn.Ports(c.ctx, c.e.recordTarget(c.st, rec), count)
			if err != nil || len(names) < count {
				return nil
			}
			return names
		}
	}
	out := make([]string, count)
	for i := range out {
		out[i] = providers.PortName(c.st.Lab, node, i)
	}
	return out
}

// refreshPorts applies the policy again once nodes whose ports are named
// when they start have started: their anti-spoofing rules name the new
// ports. (Until then the policy's address rules guard them.)
func (c *call) refreshPorts() error {
	if !c.portsMoved.Swap(false) {
		return nil
	}
	return c.applyPolicy()
}

// applyPolicy puts the policy in force and records what each guarded node
// accepts.
func (c *call) applyPolicy() error {
	if c.e.Networks == nil {
		return nil
	}
	owned, hosted := false, false
	for _, n := range c.lab.Networks {
		o := c.providerOwns(n)
		owned, hosted = owned || o, hosted || !o
	}
	var err error
	if owned {
		err = c.guardAllInside() // no bridge of this host sees their traffic
	}
	if hosted && err == nil {
		err = c.e.Networks.ApplyPolicy(c.ctx, c.policy())
	}
	if err != nil {
		c.emit("", PhaseFailed, "firewall: %v", err)
		return err
	}
	lines := c.lab.FirewallLines()
	if len(lines) > 0 {
		var names []string
		for n := range lines {
			names = append(names, n)
		}
		sort.Strings(names)
		c.emit("", PhaseFirewall, "%s accept only what their roles allow", strings.Join(names, ", "))
	}
	return c.update(func() { c.st.Firewall = lines })
}
