package helper

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"time"

	"github.com/labctl/lab/network"
	"github.com/labctl/lab/topology"
)

// LabNets is what the helper finds on the host of a user's lab: its
// bridges with their subnets, which bridge a port is on, and what
// interfaces there are.
type LabNets struct {
	Subnets  map[string][]netip.Prefix     // bridge: its subnets
	Master   func(port string) string      // the bridge a port is attached to, "" if none
	Exists   func(name string) bool        // whether an interface exists (nil: all do)
	TapOwner func(name string) (int, bool) // a tap device's owner (network.TapOwner)
}

// vmPortToBe tells whether port is a VM node's that is not there yet: the
// helper makes it on the lab's bridge when the VM starts (op tap), and a
// rule for it matches nothing until then.
func (nets LabNets) vmPortToBe(port string) bool {
	return nets.Exists != nil && tapRe.MatchString(port) && !nets.Exists(port)
}

// contains tells whether a is in a subnet of bridge ("": of any of the
// lab's bridges).
func (nets LabNets) contains(a netip.Addr, bridge string) bool {
	for br, ps := range nets.Subnets {
		for _, s := range ps {
			if (bridge == "" || br == bridge) && s.Contains(a) {
				return true
			}
		}
	}
	return false
}

var (
	nodeRe  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	portsRe = regexp.MustCompile(`^[0-9]{1,5}(-[0-9]{1,5})?$`)
	cutRe   = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
)

// CheckPolicy checks a lab's firewall and partitions before the helper
// renders them: everything it names is the lab's. Ports are interfaces on
// the lab's bridges (the anti-spoofing rules of one match only what
// enters from it), guarded and partitioned addresses are in the lab's
// subnets (a rule cannot reach the host's other traffic), and every name
// that goes into a rule is a node's or a fault's.
func CheckPolicy(p *network.Policy, lab string, nets LabNets) error {
	if p == nil {
		return errors.New("policy: missing")
	}
	if p.Lab != lab {
		return fmt.Errorf("policy: of lab %q, asked for %q", topology.Cut(p.Lab), lab)
	}
	for br := range p.Bridges {
		if _, ok := nets.Subnets[br]; !ok {
			return fmt.Errorf("policy: bridge %q is not one of lab %s's", topology.Cut(br), lab)
		}
	}
	in := nets.contains
	for i, pt := range p.Ports {
		where := fmt.Sprintf("policy: ports[%d]", i)
		if !nodeRe.MatchString(pt.Node) {
			return fmt.Errorf("%s: %q is not a node's name", where, topology.Cut(pt.Node))
		}
		if _, ok := nets.Subnets[pt.Bridge]; !ok || (nets.Master(pt.Name) != pt.Bridge && !nets.vmPortToBe(pt.Name)) {
			return fmt.Errorf("%s: %q is not a port on lab %s's bridge %q", where, topology.Cut(pt.Name), lab, topology.Cut(pt.Bridge))
		}
		if !in(pt.Addr, pt.Bridge) || (pt.Addr6.IsValid() && !in(pt.Addr6, pt.Bridge)) {
			return fmt.Errorf("%s: an address not in its network", where)
		}
		if err := allIn(pt.Floating, in, where+".floating"); err != nil {
			return err
		}
	}
	for i, g := range p.Guards {
		where := fmt.Sprintf("policy: guards[%d]", i)
		if !nodeRe.MatchString(g.Node) {
			return fmt.Errorf("%s: %q is not a node's name", where, topology.Cut(g.Node))
		}
		addrs := append([]netip.Addr{g.Addr}, g.Floating...)
		if g.Addr6.IsValid() {
			addrs = append(addrs, g.Addr6)
		}
		if err := allIn(addrs, in, where); err != nil {
			return err
		}
		for j, a := range g.Allow {
			for _, ps := range [][]string{a.TCP, a.UDP} {
				for _, port := range ps {
					if !portsRe.MatchString(port) {
						return fmt.Errorf("%s.allow[%d]: %q is not a port or a range", where, j, topology.Cut(port))
					}
				}
			}
			for _, f := range a.From {
				if !f.IsValid() {
					return fmt.Errorf("%s.allow[%d]: an invalid source", where, j)
				}
			}
		}
	}
	for i, c := range p.Cuts {
		where := fmt.Sprintf("policy: cuts[%d]", i)
		if !cutRe.MatchString(c.ID) {
			return fmt.Errorf("%s: %q is not a fault's id", where, topology.Cut(c.ID))
		}
		if err := allIn(append(append([]netip.Addr(nil), c.From...), c.To...), in, where); err != nil {
			return err
		}
	}
	return nil
}

func allIn(addrs []netip.Addr, in func(netip.Addr, string) bool, where string) error {
	for _, a := range addrs {
		if !in(a, "") {
			return fmt.Errorf("%s: %s is not in the lab's networks", where, a)
		}
	}
	return nil
}

// MaxDelay bounds a delay line's delay and jitter, as lab fault delay does.
const MaxDelay = time.Minute

// CheckDelay checks a delay or undelay request: a fault's id, ports on the
// lab's bridges, sources in its subnets, and a delay within bounds.
func CheckDelay(req *Request, nets LabNets) error {
	if !cutRe.MatchString(req.Fault) {
		return fmt.Errorf("delay: %q is not a fault's id", topology.Cut(req.Fault))
	}
	if len(req.Ports) == 0 || len(req.Ports) > 16 {
		return fmt.Errorf("delay: %d ports: want 1 to 16", len(req.Ports))
	}
	for _, p := range req.Ports {
		br := nets.Master(p)
		if _, ok := nets.Subnets[br]; !ok || br == "" {
			return fmt.Errorf("delay: %q is not a port on one of lab %s's bridges", topology.Cut(p), req.Lab)
		}
	}
	if err := allIn(req.From, nets.contains, "delay: from"); err != nil {
		return err
	}
	if req.Op == "undelay" {
		if req.PID < 0 {
			return fmt.Errorf("delay: pid %d", req.PID)
		}
		return nil
	}
	d := req.Delay
	switch {
	case d == nil:
		return errors.New("delay: missing")
	case d.Delay < 0 || d.Jitter < 0 || d.Delay > MaxDelay || d.Jitter > MaxDelay:
		return fmt.Errorf("delay: want 0 to %s", MaxDelay)
	case d.Loss < 0 || d.Loss > 1 || d.Rate < 0:
		return errors.New("delay: loss is a share from 0 to 1, rate at least 0")
	}
	return nil
}
