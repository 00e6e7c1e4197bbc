package topology

import (
	"fmt"
	"net/netip"
	"strings"
)

// Floating is an address a role's nodes share (a VRRP address that moves
// between them with keepalived, say): any node of the role may send from
// it, and the role's firewall guards it. On a dual-stack network it has an
// IPv6 twin with the same host number.
type Floating struct {
	Network string     `json:"network"`
	Addr    netip.Addr `json:"address"`
	Addr6   netip.Addr `json:"address6,omitzero"`
}

// validateFloating checks a role's `floating:` addresses: each an IPv4
// address of one of the role's networks (whose subnet the file gives), a
// reserved host number (2 to 10: never a node's address, whatever the
// counts), and no other role's.
func (t *Topology) validateFloating(at reporter, path string, r *Role, taken map[netip.Addr]string) {
	for i, s := range r.Floating {
		p := fmt.Sprintf("%s[%d]", path, i)
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			at(p, "%q: want an IPv4 address of one of the role's networks, such as 10.80.0.5", Cut(s))
			continue
		}
		net, host := t.hostOn(r, a)
		switch {
		case net == "":
			at(p, "%s is in none of the subnets of the role's networks (%s; a network without subnet: has no fixed addresses)", a, strings.Join(r.Networks, ", "))
		case host < 2 || host > ReservedHosts:
			at(p, "%s is host %d of network %s: a floating address is a reserved host, .2 to .%d (nodes start at .%d)", a, host, net, ReservedHosts, ReservedHosts+1)
		case taken[a] != "":
			at(p, "%s is %s's already", a, taken[a])
		default:
			taken[a] = "role " + r.Role
		}
	}
}

// hostOn finds the role's network whose written subnet holds a, and a's
// host number in it.
func (t *Topology) hostOn(r *Role, a netip.Addr) (string, int) {
	for _, name := range r.Networks {
		for _, n := range t.Networks {
			if n.Name != name || n.Subnet == "" {
				continue
			}
			pfx, err := ParseSubnet(n.Subnet)
			if err != nil || !pfx.Contains(a) {
				continue
			}
			b, base := a.As4(), pfx.Addr().As4()
			v := func(x [4]byte) int { return int(x[0])<<24 | int(x[1])<<16 | int(x[2])<<8 | int(x[3]) }
			return n.Name, v(b) - v(base)
		}
	}
	return "", 0
}

// Floating returns a role's floating addresses, with their IPv6 twins.
func (l *Lab) Floating(role string) []Floating {
	r := l.RoleByName(role)
	if r == nil {
		return nil
	}
	var out []Floating
	for _, s := range r.Floating {
		a, err := netip.ParseAddr(s)
		if err != nil {
			continue
		}
		name, host := l.Topology.hostOn(r, a)
		f := Floating{Network: name, Addr: a}
		if net := l.Network(name); net != nil && net.Subnet6.IsValid() {
			f.Addr6 = HostAddr6(net.Subnet6, host)
		}
		out = append(out, f)
	}
	return out
}

// FloatingOn is the floating addresses (both families) a node may send
// from on a network.
func (l *Lab) FloatingOn(n Node, network string) []netip.Addr {
	var out []netip.Addr
	for _, f := range l.Floating(n.Role) {
		if f.Network != network {
			continue
		}
		out = append(out, f.Addr)
		if f.Addr6.IsValid() {
			out = append(out, f.Addr6)
		}
	}
	return out
}
