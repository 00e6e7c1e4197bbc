package topology

import (
	"crypto/sha256"
	"fmt"
	"hash/fnv"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"
)

// SSHPackages go into the image of every role with ssh: true (python3 is
// what Ansible's modules run with).
var SSHPackages = []string{"openssh-server", "python3"}

// The address plan. In every network host numbers 1 to 10 are reserved (.1 is
// the bridge, which also serves DNS). Then each role, in file order, owns a
// block of addresses: role i's node n gets host number
// ReservedHosts + i*block + n. The block depends only on the subnet's size, so
// changing one role's count never moves another node, and the same file gives
// the same addresses on any machine.
const ReservedHosts = 10

// BlockSize is the number of addresses each role owns in a subnet: a twelfth
// of the usable hosts, rounded down to tens when there are at least ten (20 in
// a /24, 40 in a /23, 5460 in a /16).
func BlockSize(p netip.Prefix) int {
	hosts := 1 << (32 - p.Bits())
	b := (hosts - ReservedHosts - 2) / MaxRoles
	if b >= 10 {
		b -= b % 10
	}
	return b
}

// prefixFor is the longest IPv4 prefix whose role blocks hold node number n.
func prefixFor(n int) int {
	for bits := 30; bits > 8; bits-- {
		if BlockSize(netip.PrefixFrom(netip.IPv4Unspecified(), bits)) >= n {
			return bits
		}
	}
	return 8
}

// blockSize is the block of addresses a role owns: the smallest of its own
// networks' blocks (a role is not limited by a network it is not on).
func (t *Topology) blockSize(r *Role) int {
	on := map[string]bool{}
	for _, n := range r.Networks {
		on[n] = true
	}
	min := 0
	for _, n := range t.Networks {
		if !on[n.Name] {
			continue
		}
		p := netip.MustParsePrefix("10.0.0.0/24")
		if n.Subnet != "" {
			var err error
			if p, err = ParseSubnet(n.Subnet); err != nil {
				continue
			}
		}
		if b := BlockSize(p); min == 0 || b < min {
			min = b
		}
	}
	return min
}

// AutoSubnet is the first subnet tried for a network that names none: a /24
// in 10.200.0.0-10.249.255.0 derived from the lab and network names. Which one
// is really used is decided when the network is created (it must not overlap
// the host's routes or another lab) and then kept in the lab's state.
func AutoSubnet(lab, network string, attempt int) netip.Prefix {
	h := fnv.New32a()
	fmt.Fprintf(h, "%s/%s", lab, network)
	v := (h.Sum32() + uint32(attempt)*7919) % (50 * 256)
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(200 + v/256), byte(v % 256), 0}), 24)
}

// Lab is a topology expanded into concrete networks and nodes.
type Lab struct {
	Name     string
	Topology *Topology
	Networks []Net
	Nodes    []Node
}

// Net is a lab network with its bridge and subnet decided.
type Net struct {
	Name    string       `json:"name"`
	Bridge  string       `json:"bridge"`
	Subnet  netip.Prefix `json:"subnet"`
	Gateway netip.Addr   `json:"address"` // the bridge's address, .1; not a default route for nodes
	// Subnet6 is the IPv6 /64 (invalid when the network is IPv4 only);
	// Gateway6, its ::1, is the bridge's.
	Subnet6  netip.Prefix `json:"subnet6,omitzero"`
	Gateway6 netip.Addr   `json:"address6,omitzero"`
	Domain   string       `json:"domain"`
	Auto     bool         `json:"auto,omitempty"` // the subnet was chosen, not written
	// ProviderMade: the nodes' provider makes the network (an LXD
	// cluster's; set by the engine): the host is a station on it, at
	// HostPort, not its gateway.
	ProviderMade bool `json:"provider_made,omitempty"`
}

// HostAddrs are the host's addresses on the network, as its nodes see it:
// the gateway's, or on a network a provider makes, its port's.
func (n Net) HostAddrs() (netip.Addr, netip.Addr) {
	if n.ProviderMade {
		return n.HostPort()
	}
	return n.Gateway, n.Gateway6
}

// Node is one machine of the lab.
type Node struct {
	Name       string      `json:"name"`
	Role       string      `json:"role"`
	Index      int         `json:"index"` // 1-based within its role
	Provider   string      `json:"provider"`
	Image      string      `json:"image"`
	Packages   []string    `json:"packages,omitempty"` // sorted, defaults included
	CPUs       int         `json:"cpus"`
	Memory     int64       `json:"memory"`
	Accel      string      `json:"accel,omitempty"`
	Interfaces []Interface `json:"interfaces"`
	// Privileged and Nesting are what the lab file says; Unprivileged is
	// what the node is: a container in a user namespace (set by the engine,
	// which knows which providers make containers).
	Privileged   bool `json:"privileged,omitempty"`
	Nesting      bool `json:"nesting,omitempty"`
	Unprivileged bool `json:"unprivileged,omitempty"`
	// Target is the LXD cluster member the lab file pins the node to ("":
	// LXD's scheduler places it).
	Target string `json:"target,omitempty"`

	Spec *Role `json:"-"`
}

// Interface is a node's address on one lab network: IPv4, and IPv6 when
// the network is dual stack (Addr6 has the same host number, written in
// the same digits: 10.80.0.21 is fd…::21).
type Interface struct {
	Network string       `json:"network"`
	Bridge  string       `json:"bridge"`
	Addr    netip.Addr   `json:"address"`
	Subnet  netip.Prefix `json:"subnet"`
	Addr6   netip.Addr   `json:"address6,omitzero"`
	Subnet6 netip.Prefix `json:"subnet6,omitzero"`
}

// IP is the node's address on its first network.
func (n Node) IP() netip.Addr {
	if len(n.Interfaces) == 0 {
		return netip.Addr{}
	}
	return n.Interfaces[0].Addr
}

// IP6 is the node's IPv6 address on its first network (invalid when that
// network is IPv4 only).
func (n Node) IP6() netip.Addr {
	if len(n.Interfaces) == 0 {
		return netip.Addr{}
	}
	return n.Interfaces[0].Addr6
}

// HostPort is this host's own address on a network a provider makes (an
// LXD cluster's, whose gateway is on every member): the subnet's last
// usable address, which no role block reaches (BlockSize keeps
// ReservedHosts + MaxRoles*block below it), and in IPv6 the same host
// number (invalid when the network is IPv4 only).
func (n Net) HostPort() (netip.Addr, netip.Addr) {
	host := 1<<(32-n.Subnet.Bits()) - 2
	var v6 netip.Addr
	if n.Subnet6.IsValid() {
		v6 = HostAddr6(n.Subnet6, host)
	}
	return hostAddr(n.Subnet.Masked(), host), v6
}

// BridgeName is the Linux bridge of a lab's i-th network.
func BridgeName(lab string, i int) string { return fmt.Sprintf("lab-%s-%d", lab, i) }

// NodeName is a node's name within the lab.
func NodeName(role string, index int) string { return fmt.Sprintf("%s%d", role, index) }

// Expand turns a validated topology into networks and nodes. subnets holds
// the subnets already chosen for networks that name none (from the lab's
// state); others get their first AutoSubnet candidate.
func Expand(t *Topology, subnets map[string]netip.Prefix) (*Lab, error) {
	lab := &Lab{Name: t.Name, Topology: t}
	byName := map[string]Net{}
	for i, n := range t.Networks {
		var pfx netip.Prefix
		auto := false
		if n.Subnet != "" {
			var err error
			if pfx, err = ParseSubnet(n.Subnet); err != nil {
				return nil, err
			}
		} else if s, ok := subnets[n.Name]; ok {
			pfx, auto = s, true
		} else {
			pfx, auto = AutoSubnet(t.Name, n.Name, 0), true
		}
		net := Net{
			Name:    n.Name,
			Bridge:  BridgeName(t.Name, i),
			Subnet:  pfx,
			Gateway: pfx.Addr().Next(),
			Domain:  n.Domain,
			Auto:    auto,
		}
		if n.HasIPv6() {
			net.Subnet6 = AutoSubnet6(t.Name, n.Name)
			if n.Subnet6 != "" {
				var err error
				if net.Subnet6, err = ParseSubnet6(n.Subnet6); err != nil {
					return nil, err
				}
			}
			net.Gateway6 = HostAddr6(net.Subnet6, 1)
		}
		lab.Networks = append(lab.Networks, net)
		byName[n.Name] = net
	}
	for ri := range t.Nodes {
		r := &t.Nodes[ri]
		mem, err := ParseSize(r.Memory)
		if err != nil {
			return nil, err
		}
		pkgs := mergePackages(t.Defaults.Packages, r.Packages)
		if r.SSHEnabled() {
			pkgs = mergePackages(pkgs, SSHPackages)
		}
		for idx := r.FirstOf(); idx <= r.LastOf(); idx++ {
			n := Node{
				Name:       NodeName(r.Role, idx),
				Role:       r.Role,
				Index:      idx,
				Provider:   r.Provider,
				Image:      r.Image,
				Packages:   pkgs,
				CPUs:       r.CPUs,
				Memory:     mem,
				Accel:      r.Accel,
				Spec:       r,
				Privileged: r.IsPrivileged(),
				Nesting:    r.IsNesting(),
				Target:     r.TargetOf(idx),
			}
			for _, nn := range r.Networks {
				net := byName[nn]
				block := BlockSize(net.Subnet)
				if idx > block {
					return nil, fmt.Errorf("role %s: node %d does not fit the block of %d addresses in %s", r.Role, idx, block, net.Subnet)
				}
				host := ReservedHosts + ri*block + idx
				ifc := Interface{
					Network: nn, Bridge: net.Bridge, Subnet: net.Subnet,
					Addr: hostAddr(net.Subnet, host),
				}
				if net.Subnet6.IsValid() {
					ifc.Addr6, ifc.Subnet6 = HostAddr6(net.Subnet6, host), net.Subnet6
				}
				n.Interfaces = append(n.Interfaces, ifc)
			}
			lab.Nodes = append(lab.Nodes, n)
		}
	}
	return lab, nil
}

// AutoSubnet6 is the IPv6 /64 of a network that names none: a unique local
// address prefix (fd00::/8, RFC 4193) whose 56 bits come from the lab and
// network names, so the same file gives the same addresses everywhere.
func AutoSubnet6(lab, network string) netip.Prefix {
	h := sha256.Sum256([]byte("lab/" + lab + "/" + network))
	var a [16]byte
	a[0] = 0xfd
	copy(a[1:8], h[:7])
	return netip.PrefixFrom(netip.AddrFrom16(a), 64)
}

// HostAddr6 is host number host in a /64, written with the same digits as
// in IPv4 so that people read them alike: host 21 is ::21 (0x21).
func HostAddr6(p netip.Prefix, host int) netip.Addr {
	id, _ := strconv.ParseUint(strconv.Itoa(host), 16, 64)
	a := p.Masked().Addr().As16()
	for i := 0; i < 8; i++ {
		a[15-i] = byte(id >> (8 * i))
	}
	return netip.AddrFrom16(a)
}

func hostAddr(p netip.Prefix, host int) netip.Addr {
	b := p.Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += uint32(host)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func mergePackages(a, b []string) []string {
	set := map[string]bool{}
	for _, p := range a {
		set[p] = true
	}
	for _, p := range b {
		set[p] = true
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// Node returns the node with that name, or nil.
func (l *Lab) Node(name string) *Node {
	for i := range l.Nodes {
		if l.Nodes[i].Name == name {
			return &l.Nodes[i]
		}
	}
	return nil
}

// RoleNodes returns the nodes of a role in index order.
func (l *Lab) RoleNodes(role string) []Node {
	var out []Node
	for _, n := range l.Nodes {
		if n.Role == role {
			out = append(out, n)
		}
	}
	return out
}

// Network returns the network with that name, or nil.
func (l *Lab) Network(name string) *Net {
	for i := range l.Networks {
		if l.Networks[i].Name == name {
			return &l.Networks[i]
		}
	}
	return nil
}

// FQDN is a node's DNS name on its first network.
func (l *Lab) FQDN(n Node) string {
	if len(n.Interfaces) == 0 {
		return n.Name
	}
	if net := l.Network(n.Interfaces[0].Network); net != nil && net.Domain != "" {
		return n.Name + "." + net.Domain
	}
	return n.Name
}

// Timeouts returns the boot and health timeouts (validated by Load).
func (t *Topology) Timeouts() (boot, health time.Duration) {
	boot, _ = time.ParseDuration(t.Defaults.BootTimeout)
	health, _ = time.ParseDuration(t.Defaults.HealthTimeout)
	return boot, health
}

// Hosts renders /etc/hosts lines for every node of the lab.
func (l *Lab) Hosts() string {
	var b strings.Builder
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	for _, n := range l.Nodes {
		for i, ifc := range n.Interfaces {
			net := l.Network(ifc.Network)
			names := []string{}
			if net != nil && net.Domain != "" {
				names = append(names, n.Name+"."+net.Domain)
			}
			if i == 0 {
				names = append(names, n.Name)
			}
			fmt.Fprintf(&b, "%s\t%s\n", ifc.Addr, strings.Join(names, " "))
		}
	}
	return b.String()
}
