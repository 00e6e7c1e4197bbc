package engine

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/labctl/lab/image"
	"github.com/labctl/lab/plan"
	"github.com/labctl/lab/providers"
	"github.com/labctl/lab/topology"
)

// imageSpec is the image a node is made from.
func (e *Engine) imageSpec(n topology.Node, p providers.Provider) image.Spec {
	pk := append([]string{}, n.Packages...)
	var base []string
	if ip, ok := p.(providers.ImagePackager); ok {
		base = ip.ImagePackages()
		pk = append(pk, base...)
	}
	return image.Spec{Suite: image.SuiteOf(n.Image), Mirror: e.Mirror, Packages: pk, Base: base}.Normalize()
}

// specs maps each node of want (all when nil) to its image spec.
func (e *Engine) specs(lab *topology.Lab, want map[string]bool) (map[string]image.Spec, error) {
	out := map[string]image.Spec{}
	for _, n := range lab.Nodes {
		if want != nil && !want[n.Name] {
			continue
		}
		p, err := e.provider(n.Provider)
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", n.Name, err)
		}
		out[n.Name] = e.imageSpec(n, p)
	}
	return out, nil
}

// imageKeys computes the image key each node would be made from now.
func (e *Engine) imageKeys(lab *topology.Lab) map[string]string {
	keys := map[string]string{}
	specs, _ := e.specs(lab, nil)
	for node, s := range specs {
		keys[node] = s.Key()
	}
	return keys
}

// ImageSpecs returns the distinct images a topology's nodes need.
func (e *Engine) ImageSpecs(top *topology.Topology) ([]image.Spec, error) {
	lab, err := topology.Expand(top, nil)
	if err != nil {
		return nil, err
	}
	specs, err := e.specs(lab, nil)
	if err != nil {
		return nil, err
	}
	return distinct(specs), nil
}

func distinct(specs map[string]image.Spec) []image.Spec {
	byKey := map[string]image.Spec{}
	for _, s := range specs {
		byKey[s.Key()] = s
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]image.Spec, 0, len(keys))
	for _, k := range keys {
		out = append(out, byKey[k])
	}
	return out
}

// BuildImages builds every image the lab file's roles need ahead of time
// (lab image build), and returns them.
func (e *Engine) BuildImages(ctx context.Context, top *topology.Topology) ([]*image.Image, error) {
	if e.Images == nil {
		return nil, fmt.Errorf("no image cache")
	}
	specs, err := e.ImageSpecs(top)
	if err != nil {
		return nil, err
	}
	built, err := e.begin(ctx, top.Name).ensureImages(specs)
	if err != nil {
		return nil, err
	}
	out := make([]*image.Image, 0, len(specs))
	for _, s := range specs {
		out = append(out, built[s.Key()])
	}
	return out, nil
}

// buildImages makes sure every image a node to create or start needs is
// built, and returns each such node's image.
func (c *call) buildImages(p *plan.Plan) (map[string]*image.Image, error) {
	want := map[string]bool{}
	for _, name := range p.Nodes(plan.Create, plan.Replace, plan.Start) {
		want[name] = true
	}
	specs, err := c.e.specs(c.lab, want)
	if err != nil {
		return nil, err
	}
	if c.e.Images == nil || len(specs) == 0 {
		return map[string]*image.Image{}, nil
	}
	built, err := c.ensureImages(distinct(specs))
	if err != nil {
		return nil, err
	}
	out := map[string]*image.Image{}
	for node, s := range specs {
		out[node] = built[s.Key()]
	}
	return out, nil
}

// ensureImages builds specs two at a time (bootstrapping is dpkg-bound),
// with the builds' output as image events of this call.
func (c *call) ensureImages(specs []image.Spec) (map[string]*image.Image, error) {
	built := map[string]*image.Image{}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(c.ctx)
	g.SetLimit(2)
	for _, spec := range specs {
		k := spec.Key()
		g.Go(func() error {
			t := time.Now()
			img, err := c.e.Images.Ensure(gctx, spec, func(line string) { c.emit("", PhaseImage, "%s: %s", k, line) })
			if err != nil {
				c.emit("", PhaseFailed, "image %s: %v", k, err)
				return err
			}
			if time.Since(t) > time.Second {
				c.emit("", PhaseImage, "%s built (%s) in %.1fs", k, strings.Join(spec.Packages, " "), time.Since(t).Seconds())
			}
			mu.Lock()
			built[k] = img
			mu.Unlock()
			return nil
		})
	}
	return built, g.Wait()
}
