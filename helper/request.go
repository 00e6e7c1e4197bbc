// Package helper is the privileged side of lab without root (#20): what a
// member of the lab group may ask root to do to the host's network for a
// lab of its own, and nothing else. A request names a lab and the index of
// one of its networks, never a bridge, a path or a command line: the
// helper derives the bridge's name (lab-LAB-N), writes dnsmasq's files
// under its own folder, and renders nftables rules itself, so that the only
// inputs are names, numbers and addresses it checks here:
//
//   - the lab name is a lab's (lowercase letters, digits, dashes), short
//     enough that its bridge's name is a valid interface name;
//   - subnets are private (10/8, 172.16/12, 192.168/16; IPv6 a /64 of
//     fd00::/8), masked, and overlap no route of the host but their own
//     bridge's (the caller checks routes through Routes);
//   - the domain and every host name are DNS names, and every host address
//     is in the network: no option of dnsmasq can be injected through them;
//   - a lab's networks belong to the user who made them (Owners): another
//     user's lab of the same name, or one the helper did not make (root's),
//     is refused, and a user has at most MaxLabs.
package helper

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"github.com/labctl/lab/network"
	"github.com/labctl/lab/topology"
)

// MaxRequest bounds a request's size.
const MaxRequest = 1 << 20

// MaxHosts bounds the names a network's dnsmasq serves.
const MaxHosts = 4096

// Ops are what a request may ask.
var Ops = []string{"up", "hosts", "down", "policy", "clear", "delay", "undelay", "tap", "untap"}

// Request is what a user asks of the helper, as JSON on its standard input.
type Request struct {
	Op      string `json:"op"`
	Lab     string `json:"lab"`
	Index   int    `json:"index"`             // the network's index: its bridge is lab-LAB-INDEX
	Subnet  string `json:"subnet"`            // up: the network's IPv4 subnet
	Subnet6 string `json:"subnet6,omitempty"` // up: its IPv6 /64, if it has one
	Domain  string `json:"domain,omitempty"`  // up: the domain dnsmasq answers for
	Hosts   []Host `json:"hosts,omitempty"`   // up, hosts: the names dnsmasq answers
	// policy: the lab's firewall, anti-spoofing and partitions (checked by
	// CheckPolicy against what the lab has on the host). clear lifts them.
	Policy *network.Policy `json:"policy,omitempty"`
	// delay, undelay: a fault's delay line on a node's ports (checked by
	// CheckDelay), for frames from From (all when empty); undelay ends
	// the line PID. tap, untap: a VM node's ports, tap devices of the
	// caller's on the network Index (checked by CheckTaps).
	Fault string         `json:"fault,omitempty"`
	Ports []string       `json:"ports,omitempty"`
	From  []netip.Addr   `json:"from,omitempty"`
	Delay *network.Delay `json:"delay,omitempty"`
	PID   int            `json:"pid,omitempty"`
}

// Host is one address and its names.
type Host struct {
	Addr  string   `json:"addr"`
	Names []string `json:"names"`
}

// Decode reads one request, refusing unknown fields and more than
// MaxRequest bytes.
func Decode(r io.Reader) (*Request, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxRequest+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxRequest {
		return nil, fmt.Errorf("request: more than %d bytes", MaxRequest)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var req Request
	if err := dec.Decode(&req); err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	if dec.More() {
		return nil, errors.New("request: one JSON object only")
	}
	return &req, nil
}

var (
	labRe  = regexp.MustCompile(`^[a-z]([a-z0-9-]*[a-z0-9])?$`)
	nameRe = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

// private are the IPv4 ranges a lab's subnet may come from.
var private = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
}

var ula = netip.MustParsePrefix("fd00::/8")

// Net checks a request and returns the network it asks for (for down and
// hosts, only Bridge is set).
func (req *Request) Net() (network.Net, error) {
	if !slices.Contains(Ops, req.Op) {
		return network.Net{}, fmt.Errorf("op %q: want one of %s", topology.Cut(req.Op), strings.Join(Ops, ", "))
	}
	if !labRe.MatchString(req.Lab) {
		return network.Net{}, fmt.Errorf("lab %q: not a lab's name (lowercase letters, digits and dashes)", topology.Cut(req.Lab))
	}
	if req.Index < 0 || req.Index > 99 {
		return network.Net{}, fmt.Errorf("index %d: want 0 to 99", req.Index)
	}
	n := network.Net{Bridge: topology.BridgeName(req.Lab, req.Index)}
	if len(n.Bridge) > 15 {
		return network.Net{}, fmt.Errorf("lab %q: its bridge %s is longer than an interface name may be (15)", req.Lab, n.Bridge)
	}
	if req.Op != "up" && req.Op != "hosts" {
		return n, nil
	}
	if req.Op == "up" {
		if err := req.subnets(&n); err != nil {
			return network.Net{}, err
		}
	}
	if req.Domain != "" && (len(req.Domain) > 253 || !nameRe.MatchString(req.Domain)) {
		return network.Net{}, fmt.Errorf("domain %q: not a DNS name", topology.Cut(req.Domain))
	}
	n.Domain = req.Domain
	return n, req.checkHosts(n)
}

// subnets checks the request's subnets and puts them, with the bridge's
// addresses (each subnet's first), in n.
func (req *Request) subnets(n *network.Net) error {
	p, err := netip.ParsePrefix(req.Subnet)
	if err != nil || !p.Addr().Is4() || p != p.Masked() || p.Bits() < 8 || p.Bits() > 30 {
		return fmt.Errorf("subnet %q: want a masked IPv4 subnet, /8 to /30", topology.Cut(req.Subnet))
	}
	if !within(p, private...) {
		return fmt.Errorf("subnet %s: not a private range (10/8, 172.16/12, 192.168/16)", p)
	}
	n.Subnet, n.Gateway = p, p.Addr().Next()
	if req.Subnet6 == "" {
		return nil
	}
	p6, err := netip.ParsePrefix(req.Subnet6)
	if err != nil || !p6.Addr().Is6() || p6.Addr().Is4In6() || p6 != p6.Masked() || p6.Bits() != 64 {
		return fmt.Errorf("subnet6 %q: want a masked IPv6 /64", topology.Cut(req.Subnet6))
	}
	if !within(p6, ula) {
		return fmt.Errorf("subnet6 %s: not a unique local range (fd00::/8)", p6)
	}
	n.Subnet6, n.Gateway6 = p6, p6.Addr().Next()
	return nil
}

// checkHosts checks the names dnsmasq is to answer: DNS names, each at an
// address of the network other than the bridge's.
func (req *Request) checkHosts(n network.Net) error {
	if len(req.Hosts) > MaxHosts {
		return fmt.Errorf("hosts: %d, at most %d", len(req.Hosts), MaxHosts)
	}
	for i, h := range req.Hosts {
		a, err := netip.ParseAddr(h.Addr)
		if err != nil || a.Zone() != "" {
			return fmt.Errorf("hosts[%d].addr %q: not an address", i, topology.Cut(h.Addr))
		}
		if req.Op == "up" && !n.Subnet.Contains(a) && !(n.Subnet6.IsValid() && n.Subnet6.Contains(a)) {
			return fmt.Errorf("hosts[%d].addr %s: not in the network", i, a)
		}
		if a == n.Gateway || a == n.Gateway6 {
			return fmt.Errorf("hosts[%d].addr %s: the bridge's own", i, a)
		}
		if len(h.Names) == 0 {
			return fmt.Errorf("hosts[%d]: no names", i)
		}
		for _, name := range h.Names {
			if len(name) > 253 || !nameRe.MatchString(name) {
				return fmt.Errorf("hosts[%d]: %q: not a DNS name", i, topology.Cut(name))
			}
		}
	}
	return nil
}

// HostsFile is the dnsmasq hosts file of a checked request.
func (req *Request) HostsFile() string {
	var b strings.Builder
	for _, h := range req.Hosts {
		fmt.Fprintf(&b, "%s %s\n", h.Addr, strings.Join(h.Names, " "))
	}
	return b.String()
}

func within(p netip.Prefix, in ...netip.Prefix) bool {
	for _, r := range in {
		if r.Bits() <= p.Bits() && r.Contains(p.Addr()) {
			return true
		}
	}
	return false
}
