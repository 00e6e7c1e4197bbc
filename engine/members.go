package engine

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/labctl/lab/providers"
)

// Nodes of a provider that places them on several machines (an LXD
// cluster's members) live where the provider says: status shows it, and
// up refuses to go on while a node's member is offline.

// locations asks such providers where each recorded node lives, once per
// call.
func (c *call) locations() map[string]providers.Location {
	if c.placed != nil {
		return c.placed
	}
	byProvider := map[string][]providers.Node{}
	for _, rec := range c.st.Nodes {
		byProvider[rec.Provider] = append(byProvider[rec.Provider], c.e.recordTarget(c.st, rec))
	}
	out := map[string]providers.Location{}
	for name, nodes := range byProvider {
		p, err := c.e.provider(name)
		if err != nil {
			continue
		}
		l, ok := p.(providers.Locator)
		if !ok {
			continue
		}
		ctx, cancel := context.WithTimeout(c.ctx, 2*remoteStateWait)
		where, err := l.Locate(ctx, nodes)
		cancel()
		if err != nil {
			continue // State says unknown where the provider cannot answer
		}
		for node, loc := range where {
			out[node] = loc
		}
	}
	c.placed = out
	return out
}

// locate fills in each recorded node's member; a node whose member is
// offline is unreachable, and says which member.
func (c *call) locate(out []NodeStatus) {
	where := c.locations()
	for i := range out {
		loc, ok := where[out[i].Name]
		if !ok {
			continue
		}
		out[i].Member = loc.Member
		if !loc.Online {
			out[i].State = "unreachable"
			out[i].Note = fmt.Sprintf("its member %s is offline (lxc cluster list)", loc.Member)
		}
	}
}

// checkMembers refuses to go on while nodes live on offline members: lab
// can neither reach them nor make them again elsewhere until the member is
// back, or removed from the cluster (then they are gone, and up makes
// them on the others).
func (c *call) checkMembers() error {
	var lost []string
	for node, loc := range c.locations() {
		if !loc.Online {
			lost = append(lost, fmt.Sprintf("%s on %s", node, loc.Member))
		}
	}
	if len(lost) == 0 {
		return nil
	}
	sort.Strings(lost)
	return fmt.Errorf("nodes on offline cluster members: %s: lab cannot reach them; bring the member back, or remove it from the cluster (lxc cluster remove --force MEMBER) and lab up makes them again on the others", strings.Join(lost, ", "))
}
