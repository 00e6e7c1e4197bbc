package helper

import (
	"fmt"
	"regexp"

	"github.com/labctl/lab/topology"
)

// tapRe is the name lab gives a VM node's port (providers.PortName):
// "v", a hash of lab and node, "-", the interface's index.
var tapRe = regexp.MustCompile(`^v[0-9a-f]{8}-[0-9]{1,2}$`)

// CheckTaps checks a tap request (make the ports, each a tap device of
// uid, on the lab's bridge bridge) or an untap request (remove them): the
// names are VM ports' names, an interface of that name already there is a
// tap of the caller's, on no bridge but the lab's. nets are the lab's
// bridges.
func CheckTaps(req *Request, bridge string, uid int, nets LabNets) error {
	if len(req.Ports) == 0 || len(req.Ports) > 16 {
		return fmt.Errorf("%s: %d ports, want 1 to 16", req.Op, len(req.Ports))
	}
	if _, ok := nets.Subnets[bridge]; req.Op == "tap" && !ok {
		return fmt.Errorf("tap: lab %s has no bridge %s up", req.Lab, bridge)
	}
	for i, p := range req.Ports {
		where := fmt.Sprintf("%s: ports[%d]", req.Op, i)
		if !tapRe.MatchString(p) {
			return fmt.Errorf("%s: %q is not a VM port's name (vXXXXXXXX-N)", where, topology.Cut(p))
		}
		if nets.Exists != nil && !nets.Exists(p) {
			continue
		}
		owner, ok := 0, false
		if nets.TapOwner != nil {
			owner, ok = nets.TapOwner(p)
		}
		if !ok || owner != uid {
			return fmt.Errorf("%s: %s exists and is not a tap device of yours", where, p)
		}
		if m := nets.Master(p); m != "" {
			if _, ours := nets.Subnets[m]; !ours {
				return fmt.Errorf("%s: %s is on bridge %s, not one of lab %s's", where, p, m, req.Lab)
			}
		}
	}
	return nil
}
