package lxd

import (
	"context"
	"fmt"
	"hash/fnv"
	"net/netip"
	"sort"
	"strings"

	"github.com/labctl/lab/providers"
)

// Net is a lab network as LXD makes it: a managed bridge on every member,
// joined across members by multicast VXLAN (OVN needs Open vSwitch, which
// this kernel has no datapath for; a network's tunnel keys are
// cluster-wide, and a multicast group needs no per-member remote).
type Net struct {
	Name    string       // the LXD network's name (netName)
	Bridge  string       // the lab's bridge name, lab-LAB-I
	Subnet  netip.Prefix // 10.80.0.0/24
	Gateway netip.Addr   // every member's bridge has it: a distributed gateway
	// TunnelDev is the members' interface VXLAN goes through ("" : the
	// one of the default route, which a member may not have).
	TunnelDev string
	Domain    string // the DNS domain of the lab's names
	// Subnet6 and Gateway6: dual stack (invalid: IPv4 only).
	Subnet6  netip.Prefix
	Gateway6 netip.Addr
	// Host and Host6 are this host's port on the network (hostport.go).
	Host, Host6 netip.Addr
}

// tunnelGroup is the multicast group of every lab network's tunnels (each
// has its own VXLAN id).
const tunnelGroup = "239.0.0.1"

// vni is the network's VXLAN id, from its name.
func (n Net) vni() int {
	h := fnv.New32a()
	h.Write([]byte(n.Name))
	return int(h.Sum32()%(1<<24-2)) + 1
}

// config is the network's cluster-wide configuration.
func (n Net) config(clustered bool) map[string]string {
	c := map[string]string{
		"ipv4.address": netip.PrefixFrom(n.Gateway, n.Subnet.Bits()).String(),
		"ipv4.nat":     "false",
		"ipv4.dhcp":    "false",
		"ipv6.address": "none",
		"user.lab":     "true",
	}
	if n.Subnet6.IsValid() {
		c["ipv6.address"] = netip.PrefixFrom(n.Gateway6, n.Subnet6.Bits()).String()
		c["ipv6.nat"], c["ipv6.dhcp"], c["ipv6.dhcp.stateful"] = "false", "false", "false"
	}
	if n.Domain != "" {
		c["dns.domain"] = n.Domain
	}
	if clustered {
		c["tunnel.t.protocol"] = "vxlan"
		c["tunnel.t.group"] = tunnelGroup
		c["tunnel.t.id"] = fmt.Sprint(n.vni())
		if n.TunnelDev != "" {
			c["tunnel.t.interface"] = n.TunnelDev
		}
	}
	return c
}

// member is a member of the cluster, as LXD lists it.
type member struct {
	Name   string `json:"server_name"`
	Status string `json:"status"` // Online, Offline, …
	URL    string `json:"url"`    // https://ADDRESS:8443
}

// members lists the cluster's members, sorted by name; none when LXD is not
// clustered.
func (p *Provider) members(ctx context.Context) ([]member, error) {
	var cl struct {
		Enabled bool `json:"enabled"`
	}
	if err := p.c.query(ctx, "GET", "/1.0/cluster", nil, &cl); err != nil || !cl.Enabled {
		return nil, err
	}
	var ms []member
	if err := p.c.query(ctx, "GET", "/1.0/cluster/members?recursion=1", nil, &ms); err != nil {
		return nil, err
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Name < ms[j].Name })
	return ms, nil
}

// ensureNetwork makes the network unless it exists: in a cluster, pending
// on each member first, then for all of them, as LXD asks.
func (p *Provider) ensureNetwork(ctx context.Context, n Net) error {
	if err := p.c.query(ctx, "GET", "/1.0/networks/"+n.Name, nil, nil); err == nil {
		return nil
	} else if !notFound(err) {
		return err
	}
	members, err := p.members(ctx)
	if err != nil {
		return fmt.Errorf("network %s: %w", n.Name, err)
	}
	for _, m := range members {
		if err := p.c.query(ctx, "POST", "/1.0/networks?target="+m.Name, map[string]any{"name": n.Name, "type": "bridge"}, nil); err != nil {
			return fmt.Errorf("network %s: on member %s: %w", n.Name, m.Name, err)
		}
	}
	body := map[string]any{"name": n.Name, "type": "bridge", "config": n.config(len(members) > 0), "description": "lab network " + n.Bridge}
	if err := p.c.query(ctx, "POST", "/1.0/networks", body, nil); err != nil {
		return fmt.Errorf("network %s: %w", n.Name, err)
	}
	return nil
}

// hostRecords is dnsmasq's configuration for the lab's names, from lines
// of "ADDRESS NAME" (a name may have several, a role's alias one per
// node): the key is cluster-wide, so every member's dnsmasq answers for
// every node.
func hostRecords(domain, hosts string) string {
	var lines []string
	for _, l := range strings.Split(hosts, "\n") {
		f := strings.Fields(l)
		if len(f) != 2 {
			continue
		}
		if _, err := netip.ParseAddr(f[0]); err != nil {
			continue
		}
		if domain != "" {
			lines = append(lines, fmt.Sprintf("host-record=%s.%s,%s,%s", f[1], domain, f[1], f[0]))
		} else {
			lines = append(lines, fmt.Sprintf("host-record=%s,%s", f[1], f[0]))
		}
	}
	sort.Strings(lines)
	if len(lines) == 0 {
		return ""
	}
	return strings.Join(lines, "\n") + "\n"
}

// setHosts replaces the names the network's dnsmasq serves (lines of
// "ADDRESS NAME").
func (p *Provider) setHosts(ctx context.Context, n Net, hosts string) error {
	body := map[string]any{"config": map[string]string{"raw.dnsmasq": hostRecords(n.Domain, hosts)}}
	if err := p.c.query(ctx, "PATCH", "/1.0/networks/"+n.Name, body, nil); err != nil {
		return fmt.Errorf("network %s: names: %w", n.Name, err)
	}
	return nil
}

// removeNetwork deletes the network; one that is gone already is fine.
func (p *Provider) removeNetwork(ctx context.Context, name string) error {
	if err := p.c.query(ctx, "DELETE", "/1.0/networks/"+name, nil, nil); err != nil && !notFound(err) {
		return fmt.Errorf("network %s: %w", name, err)
	}
	return nil
}

// netName is the LXD network of a lab bridge: the bridge's own name, or,
// when its tunnel's interface (NAME-t) would pass Linux's 15 characters,
// lab- and a hash of it (lxc network list shows the lab's name beside it,
// in the description).
func netName(bridge string) string {
	if len(bridge)+len("-t") <= 15 {
		return bridge
	}
	h := fnv.New32a()
	h.Write([]byte(bridge))
	return fmt.Sprintf("lab-%08x", h.Sum32())
}

// netOf is a lab network as this provider makes it.
func netOf(n providers.Network) Net {
	return Net{Name: netName(n.Bridge), Bridge: n.Bridge, Subnet: n.Subnet, Gateway: n.Gateway, Subnet6: n.Subnet6, Gateway6: n.Gateway6, Domain: n.Domain, Host: n.Host, Host6: n.Host6}
}

// EnsureNetwork makes the lab network n across the cluster's members, and
// this host's port on it.
func (p *Provider) EnsureNetwork(ctx context.Context, _ string, n providers.Network) error {
	ln := netOf(n)
	if err := p.ensureNetwork(ctx, ln); err != nil {
		return err
	}
	return p.ensureHostPort(ctx, ln)
}

// SetNames replaces the names n's DNS serves on every member.
func (p *Provider) SetNames(ctx context.Context, n providers.Network, hosts string) error {
	return p.setHosts(ctx, netOf(n), hosts)
}

// RemoveNetwork deletes this host's port on the lab network named bridge,
// then the network.
func (p *Provider) RemoveNetwork(ctx context.Context, _, bridge string) error {
	name := netName(bridge)
	if err := removeHostPort(ctx, name); err != nil {
		return err
	}
	return p.removeNetwork(ctx, name)
}
