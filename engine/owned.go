package engine

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/labctl/lab/network"
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
	host, host6 := n.HostPort()
	return providers.Network{Bridge: n.Bridge, Subnet: n.Subnet, Gateway: n.Gateway, Subnet6: n.Subnet6, Gateway6: n.Gateway6, Domain: n.Domain, Host: host, Host6: host6}
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

// hostShaped refuses a delay of a node on a network its provider makes
// (an LXD cluster's): lab delays traffic on this host's node ports, which
// such a node's traffic never crosses. Kill and pause go through the
// provider; a partition is cut inside the nodes.
func (c *call) hostShaped(f *state.Fault) error {
	if f.Kind != FaultDelay {
		return nil
	}
	for _, name := range f.Nodes {
		if n := c.lab.Node(name); n != nil && c.onOwned(*n) {
			return usagef("fault delay: node %s is on a network provider %s makes, whose traffic does not cross this host: lab cannot delay it (kill, pause and partition work)", name, n.Provider)
		}
	}
	return nil
}

// onOwned tells whether a node is on a network its provider makes.
func (c *call) onOwned(n topology.Node) bool {
	for _, ifc := range n.Interfaces {
		if net := c.lab.Network(ifc.Network); net != nil && c.providerOwns(*net) {
			return true
		}
	}
	return false
}

// insideGuards are a node's guards as it enforces them itself: "host"
// is this host's port on its networks (topology.Net.HostPort) and their
// gateway, the address its member's bridge talks to it from; both are in
// the network's subnet, so the guard drops them unless an allow from the
// host admits them (network.Guard.Host).
func (c *call) insideGuards(n topology.Node) []network.Guard {
	if !n.Spec.HasFirewall() {
		return nil
	}
	gs := c.guards(n)
	for i, ifc := range n.Interfaces {
		net := c.lab.Network(ifc.Network)
		if net == nil {
			continue
		}
		host, host6 := net.HostPort()
		gs[i].Host = []netip.Addr{host, net.Gateway}
		if net.Gateway6.IsValid() {
			gs[i].Host = append(gs[i].Host, host6, net.Gateway6)
		}
	}
	return gs
}

// guardInside puts a node's firewall and the partitions that cut it in
// force inside the node (network.NodePolicy), and keeps them for its next
// boot (nftables.service loads /etc/nftables.conf): on a network its
// provider makes, no bridge of this host sees the node's traffic. Root
// in the node can lift them; the host's guard of a lab bridge it cannot.
func (c *call) guardInside(ctx context.Context, n topology.Node, prov providers.Provider, tgt providers.Node) error {
	var self []netip.Addr
	for _, ifc := range n.Interfaces {
		self = append(self, ifc.Addr)
		if ifc.Addr6.IsValid() {
			self = append(self, ifc.Addr6)
		}
	}
	script := network.NodePolicy(c.insideGuards(n), c.cuts(), self)
	sh := `cat > /etc/nftables.conf && nft -f /etc/nftables.conf && { systemctl enable --quiet nftables.service 2>/dev/null || true; }`
	var stderr strings.Builder
	code, err := prov.Exec(ctx, tgt, []string{"/bin/sh", "-c", sh}, providers.ExecIO{Stdin: strings.NewReader(script), Stderr: &stderr})
	if err != nil {
		return fmt.Errorf("node %s: firewall: %w", n.Name, err)
	}
	if code != 0 {
		return fmt.Errorf("node %s: firewall: nft: exit %d: %s", n.Name, code, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// guardAllInside puts every running node's own rules in force, on the
// networks their provider makes (a firewall or a partition changed).
func (c *call) guardAllInside() error {
	g, ctx := errgroup.WithContext(c.ctx)
	g.SetLimit(c.e.workers())
	for _, n := range c.lab.Nodes {
		if !c.onOwned(n) || c.down(n.Name) {
			continue
		}
		g.Go(func() error {
			p, err := c.e.provider(n.Provider)
			if err != nil {
				return err
			}
			tgt := c.nodeTarget(n, nil)
			// A node whose instance is gone (its member left the cluster)
			// or stopped gets its rules when it boots (bootNode).
			if st, err := p.State(ctx, tgt); err == nil && st != providers.Running {
				return nil
			}
			return c.guardInside(ctx, n, p, tgt)
		})
	}
	return g.Wait()
}
