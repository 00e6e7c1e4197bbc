package lxd

import (
	"context"
	"fmt"

	"github.com/labctl/lab/providers"
)

// Locate says on which member each node's instance is, and whether that
// member is online (lab status). Outside a cluster there are no members:
// nodes are left out.
func (p *Provider) Locate(ctx context.Context, nodes []providers.Node) (map[string]providers.Location, error) {
	members, err := p.members(ctx)
	if err != nil {
		return nil, fmt.Errorf("cluster members: %w", err)
	}
	if len(members) == 0 {
		return nil, nil
	}
	online := map[string]bool{}
	for _, m := range members {
		online[m.Name] = m.Status == "Online"
	}
	var insts []struct {
		Name     string `json:"name"`
		Location string `json:"location"`
	}
	if err := p.c.query(ctx, "GET", "/1.0/instances?recursion=1", nil, &insts); err != nil {
		return nil, fmt.Errorf("instances: %w", err)
	}
	where := map[string]string{}
	for _, in := range insts {
		where[in.Name] = in.Location
	}
	out := map[string]providers.Location{}
	for _, n := range nodes {
		if m, ok := where[instance(n)]; ok {
			out[n.Name] = providers.Location{Member: m, Online: online[m]}
		}
	}
	return out, nil
}
