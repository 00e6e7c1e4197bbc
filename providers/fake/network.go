package fake

import (
	"context"

	"github.com/labctl/lab/providers"
)

// The fake owns networks when Caps.OwnsNetwork says so (the engine asks
// Info first): it keeps each network's names by bridge.

func (p *Provider) EnsureNetwork(ctx context.Context, _ string, n providers.Network) error {
	if err := p.begin(ctx, "network", providers.Node{Name: n.Bridge}, nil); err != nil {
		return err
	}
	defer p.end()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.nets == nil {
		p.nets = map[string]string{}
	}
	if _, ok := p.nets[n.Bridge]; !ok {
		p.nets[n.Bridge] = ""
	}
	return nil
}

func (p *Provider) SetNames(ctx context.Context, n providers.Network, hosts string) error {
	if err := p.begin(ctx, "names", providers.Node{Name: n.Bridge}, nil); err != nil {
		return err
	}
	defer p.end()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nets[n.Bridge] = hosts
	return nil
}

func (p *Provider) RemoveNetwork(ctx context.Context, _, bridge string) error {
	if err := p.begin(ctx, "rmnetwork", providers.Node{Name: bridge}, nil); err != nil {
		return err
	}
	defer p.end()
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.nets, bridge)
	return nil
}

// Networks are the networks the fake made, bridge → the names it serves.
func (p *Provider) Networks() map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]string{}
	for k, v := range p.nets {
		out[k] = v
	}
	return out
}

// Locate says where Where puts each node (a node it does not name is not
// placed).
func (p *Provider) Locate(_ context.Context, nodes []providers.Node) (map[string]providers.Location, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]providers.Location{}
	for _, n := range nodes {
		if l, ok := p.Where[n.Name]; ok {
			out[n.Name] = l
		}
	}
	return out, nil
}
