package engine

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/labctl/lab/state"
	"github.com/labctl/lab/topology"
)

// expand expands the topology with the subnets the state recorded, choosing
// a free one for each new network that names none.
func (e *Engine) expand(ctx context.Context, top *topology.Topology, st *state.State) (*topology.Lab, error) {
	subnets := map[string]netip.Prefix{}
	if st != nil {
		for name, n := range st.Networks {
			p, err := topology.ParseSubnet(n.Subnet)
			if err != nil {
				return nil, fmt.Errorf("%s: network %s: subnet %v (the state is damaged: lab destroy --name %s removes what the lab made without it)", e.Store.Dir, name, err, st.Lab)
			}
			subnets[name] = p
		}
	}
	var taken []netip.Prefix
	for _, n := range top.Networks {
		if n.Subnet != "" {
			taken = append(taken, netip.MustParsePrefix(n.Subnet))
		} else if p, ok := subnets[n.Name]; ok {
			taken = append(taken, p)
		}
	}
	for i, n := range top.Networks {
		if n.Subnet != "" {
			continue
		}
		if _, ok := subnets[n.Name]; ok {
			continue
		}
		bridge := topology.BridgeName(top.Name, i)
		var lastErr error
		for attempt := 0; attempt < 64; attempt++ {
			cand := topology.AutoSubnet(top.Name, n.Name, attempt)
			clash := false
			for _, t := range taken {
				clash = clash || t.Overlaps(cand)
			}
			if clash {
				continue
			}
			if e.Networks != nil {
				if lastErr = e.Networks.CheckFree(ctx, cand, bridge); lastErr != nil {
					continue
				}
			}
			subnets[n.Name] = cand
			taken = append(taken, cand)
			break
		}
		if _, ok := subnets[n.Name]; !ok {
			return nil, fmt.Errorf("network %s: no free subnet found (last: %v); set networks[%d].subnet", n.Name, lastErr, i)
		}
	}
	lab, err := topology.Expand(top, subnets)
	if err != nil {
		return nil, err
	}
	e.markProviders(lab)
	return lab, nil
}

// markProviders says what the providers make of the lab: which nodes run
// in a user namespace (those of a provider that can, unless the lab file
// says privileged), and which networks their provider makes
// (topology.Net.ProviderMade).
func (e *Engine) markProviders(lab *topology.Lab) {
	for i := range lab.Nodes {
		n := &lab.Nodes[i]
		p, err := e.provider(n.Provider)
		n.Unprivileged = err == nil && p.Info().UserNamespaces && !n.Privileged
	}
	for i := range lab.Networks {
		lab.Networks[i].ProviderMade = e.providerOwns(lab, lab.Networks[i])
	}
}
