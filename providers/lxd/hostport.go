package lxd

import (
	"context"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"strings"
)

// This host's port on a lab network of the cluster: a VXLAN interface in
// the network's multicast group, beside the members' own tunnels. Every
// member's bridge holds the gateway's address and MAC (LXD's distributed
// gateway), so a node answers the gateway on its own member, and a host
// that reached the nodes through one member would reach only that
// member's. With a port of its own (its own MAC, the subnet's last
// address: topology.Net.HostPort) the host is one more station on the
// network's wire and reaches every node directly, as on a local lab's
// bridge. It needs the host to reach the members' tunnel interface (their
// LAN); a host that is a member itself, or is not root, gets no port (lab
// exec and ssh still reach every node through LXD).

// vxlanPort is the UDP port of LXD's VXLAN tunnels: it leaves
// tunnel.NAME.port unset, and Linux then uses 8472.
const vxlanPort = "8472"

// hostPortName is the host's port on LXD network name (at most 13
// characters, netName: the port's name fits Linux's 15).
func hostPortName(network string) string { return network + "-h" }

// ensureHostPort makes (or completes) this host's port on n.
func (p *Provider) ensureHostPort(ctx context.Context, n Net) error {
	if os.Geteuid() != 0 || !n.Host.IsValid() {
		return nil
	}
	members, err := p.members(ctx)
	if err != nil || len(members) == 0 {
		return err
	}
	dev, err := underlay(ctx, members)
	if err != nil || dev == "" {
		return err
	}
	port := hostPortName(n.Name)
	mtu := "1400" // LXD's MTU for a bridge with VXLAN tunnels
	var cfg struct {
		Config map[string]string `json:"config"`
	}
	if err := p.c.query(ctx, "GET", "/1.0/networks/"+n.Name, nil, &cfg); err == nil && cfg.Config["bridge.mtu"] != "" {
		mtu = cfg.Config["bridge.mtu"]
	}
	if _, err := os.Stat("/sys/class/net/" + port); err != nil {
		if err := ip(ctx, "link", "add", port, "mtu", mtu, "type", "vxlan", "id", fmt.Sprint(n.vni()),
			"group", tunnelGroup, "dev", dev, "dstport", vxlanPort, "ttl", "1"); err != nil {
			return fmt.Errorf("network %s: this host's port: %w", n.Name, err)
		}
	}
	// A station, not a router: no router advertisements taken, nothing
	// forwarded from the lab's network.
	for _, s := range []string{"ipv4/conf/%s/forwarding", "ipv6/conf/%s/forwarding", "ipv6/conf/%s/accept_ra", "ipv6/conf/%s/autoconf"} {
		_ = os.WriteFile("/proc/sys/net/"+fmt.Sprintf(s, port), []byte("0"), 0o644)
	}
	addrs := [][]string{{"-4", "addr", "replace", netip.PrefixFrom(n.Host, n.Subnet.Bits()).String(), "dev", port}}
	if n.Host6.IsValid() {
		addrs = append(addrs, []string{"-6", "addr", "replace", netip.PrefixFrom(n.Host6, n.Subnet6.Bits()).String(), "dev", port, "nodad"})
	}
	for _, a := range append(addrs, []string{"link", "set", port, "up"}) {
		if err := ip(ctx, a...); err != nil {
			return fmt.Errorf("network %s: this host's port: %w", n.Name, err)
		}
	}
	return nil
}

// underlay is the host's interface toward the cluster's members: the one
// of its route to the first member that has an address. "" when the host
// is a member itself (its route is local).
func underlay(ctx context.Context, members []member) (string, error) {
	for _, m := range members {
		u, err := url.Parse(m.URL)
		if err != nil || u.Hostname() == "" {
			continue
		}
		out, err := exec.CommandContext(ctx, "ip", "-o", "route", "get", u.Hostname()).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("the route to member %s (%s): %s", m.Name, u.Hostname(), strings.TrimSpace(string(out)))
		}
		f := strings.Fields(string(out))
		if len(f) > 0 && f[0] == "local" {
			return "", nil
		}
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "dev" {
				return f[i+1], nil
			}
		}
	}
	return "", nil
}

// removeHostPort deletes the host's port on LXD network name, if any.
func removeHostPort(ctx context.Context, network string) error {
	port := hostPortName(network)
	if _, err := os.Stat("/sys/class/net/" + port); err != nil {
		return nil
	}
	if err := ip(ctx, "link", "del", port); err != nil {
		return fmt.Errorf("network %s: this host's port: %w", network, err)
	}
	return nil
}

func ip(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %s", strings.Join(args, " "), strings.TrimSpace(string(out)))
	}
	return nil
}
