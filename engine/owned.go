package engine

import (
	"fmt"
	"slices"
	"time"

	"github.com/labctl/lab/providers"
	"github.com/labctl/lab/state"
	"github.com/labctl/lab/topology"
)

// A provider that owns its nodes' network (an LXD cluster's, spanning its
// members) makes the lab's networks and serves their names itself: lab
// hands it each network and the names, and makes no bridge, dnsmasq or
// host firewall for them.

// ownerOf is the provider that makes network n itself: its name and its
// NetworkOwner; "" and nil when lab makes n on this host.
func (c *call) ownerOf(n topology.Net) (string, providers.NetworkOwner) {
	if !c.providerOwns(n) {
		return "", nil
	}
	for _, node := range c.lab.Nodes {
		for _, ifc := range node.Interfaces {
			if ifc.Network != n.Name {
				continue
			}
			p, err := c.e.provider(node.Provider)
			if err != nil {
				return "", nil
			}
			if o, ok := p.(providers.NetworkOwner); ok {
				return node.Provider, o
			}
		}
	}
	return "", nil
}

func ownedNet(n topology.Net) providers.Network {
	return providers.Network{Bridge: n.Bridge, Subnet: n.Subnet, Gateway: n.Gateway, Subnet6: n.Subnet6, Gateway6: n.Gateway6, Domain: n.Domain}
}

// ensureOwned has n's provider make it and serve its names.
func (c *call) ensureOwned(n topology.Net) error {
	name, o := c.ownerOf(n)
	if o == nil {
		return nil // the provider makes its network with each node
	}
	t := time.Now()
	if err := o.EnsureNetwork(c.ctx, c.lab.Name, ownedNet(n)); err != nil {
		c.emit("", PhaseFailed, "network %s: %v", n.Name, err)
		return fmt.Errorf("network %s: %w", n.Name, err)
	}
	if err := c.setOwnedNames(n); err != nil {
		return err
	}
	c.emit("", PhaseNetwork, "%s %s by provider %s, DNS *.%s (%.2fs)", n.Name, n.Subnet, name, n.Domain, time.Since(t).Seconds())
	return nil
}

// setOwnedNames gives n's provider the names its DNS serves now.
func (c *call) setOwnedNames(n topology.Net) error {
	_, o := c.ownerOf(n)
	if o == nil {
		return nil
	}
	if err := o.SetNames(c.ctx, ownedNet(n), c.lab.DNSNames(n.Name, c.down)); err != nil {
		return fmt.Errorf("network %s: dns names: %w", n.Name, err)
	}
	return nil
}

// removeOwned has the provider that made a recorded network remove it.
func (c *call) removeOwned(name string, rec *state.Network) error {
	p, err := c.e.provider(rec.Provider)
	if err != nil {
		return fmt.Errorf("network %s: %w", name, err)
	}
	o, ok := p.(providers.NetworkOwner)
	if !ok {
		return nil
	}
	if err := o.RemoveNetwork(c.ctx, c.st.Lab, rec.Bridge); err != nil {
		return fmt.Errorf("network %s: %w", name, err)
	}
	return nil
}

// hostShaped refuses a partition or a delay that involves a node on a
// network its provider makes (an LXD cluster's): lab cuts and delays
// traffic on this host's bridges and node ports, which such a node's
// traffic never crosses. Kill and pause go through the provider.
func (c *call) hostShaped(f *state.Fault) error {
	if f.Kind != FaultPartition && f.Kind != FaultDelay {
		return nil
	}
	nodes := slices.Clone(f.Nodes)
	for _, side := range f.Targets {
		if m, err := c.members(side); err == nil {
			nodes = append(nodes, m...)
		}
	}
	for _, name := range nodes {
		n := c.lab.Node(name)
		if n == nil {
			continue
		}
		if p, err := c.e.provider(n.Provider); err == nil && p.Info().OwnsNetwork {
			return usagef("fault %s: node %s is on a network provider %s makes, whose traffic does not cross this host: lab cannot %s it (kill and pause work)", f.Kind, name, n.Provider, f.Kind)
		}
	}
	return nil
}
