package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/labctl/lab/network"
	"github.com/labctl/lab/providers"
)

// Leftover is one thing a lab made on this machine, found without reading
// any lab's state: for `lab destroy --name` and `--all-orphans`.
type Leftover struct {
	Lab   string `json:"lab"`
	Kind  string `json:"kind"` // node, bridge, nftables, forward
	Name  string `json:"name"`
	Owner string `json:"owner,omitempty"` // the state folder it was made for
	// Live: its lab's state folder still exists, so `lab destroy` there is
	// the way to remove it; the orphan cleanup leaves it alone.
	Live bool `json:"live"`

	remove func(ctx context.Context) error
}

func (l Leftover) String() string {
	s := fmt.Sprintf("%-8s %s (lab %s", l.Kind, l.Name, l.Lab)
	if l.Owner != "" {
		s += ", made for " + l.Owner
	}
	if l.Live {
		s += "; its state is there: left alone"
	}
	return s + ")"
}

// liveOwner tells whether a state folder still holds a lab's state. A
// network the helper made for a user ("uid N") is that user's to take
// down: never an orphan of root's.
func liveOwner(dir string) bool {
	if dir == "" {
		return false
	}
	if strings.HasPrefix(dir, "uid ") {
		return true
	}
	_, err := os.Stat(filepath.Join(dir, "state.json"))
	return err == nil
}

// FindLeftovers lists what labs made on this machine: of lab name, or of
// every lab when name is "". Each is marked live when the state folder it
// was made for still exists (things that record no folder are live when
// anything else of the same lab is).
func (e *Engine) FindLeftovers(ctx context.Context, name string) ([]Leftover, error) {
	var out []Leftover
	want := func(lab string) bool { return name == "" || lab == name }
	for _, pname := range providers.Names() {
		p, err := e.provider(pname)
		if err != nil {
			continue
		}
		lister, ok := p.(providers.Lister)
		if !ok {
			continue
		}
		found, err := lister.List(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", pname, err)
		}
		for _, f := range found {
			if !want(f.Lab) {
				continue
			}
			node := providers.Node{Lab: f.Lab, Name: f.Node, ID: f.ID, Owner: f.Owner}
			if node.Name == "" {
				node.Name = f.ID
			}
			out = append(out, Leftover{Lab: f.Lab, Kind: "node", Name: f.ID + " (" + pname + ")", Owner: f.Owner,
				remove: func(ctx context.Context) error { return p.Destroy(ctx, node) }})
		}
	}
	for lab, pids := range network.FindForwards() {
		if !want(lab) {
			continue
		}
		for _, pid := range pids {
			out = append(out, Leftover{Lab: lab, Kind: "forward", Name: fmt.Sprintf("socat pid %d", pid),
				remove: func(context.Context) error { network.StopForwardPID(lab, pid); return nil }})
		}
	}
	for lab, pids := range network.FindDelays() {
		if !want(lab) {
			continue
		}
		for _, pid := range pids {
			out = append(out, Leftover{Lab: lab, Kind: "forward", Name: fmt.Sprintf("delay line pid %d", pid),
				remove: func(ctx context.Context) error { return network.RemoveDelays(ctx, lab) }})
		}
	}
	for _, b := range network.FindBridges() {
		if !want(b.Lab) {
			continue
		}
		m := &network.Manager{Owner: b.Owner}
		out = append(out, Leftover{Lab: b.Lab, Kind: "bridge", Name: b.Bridge + " (with its dnsmasq and files)", Owner: b.Owner,
			remove: func(ctx context.Context) error { return m.Remove(ctx, b.Lab, b.Bridge) }})
	}
	for _, lab := range network.FindTables(ctx) {
		if !want(lab) {
			continue
		}
		out = append(out, Leftover{Lab: lab, Kind: "nftables", Name: "tables of lab_" + strings.ReplaceAll(lab, "-", "_") + " (inet, bridge, netdev)",
			remove: func(ctx context.Context) error { return network.RemoveTable(ctx, lab) }})
	}
	markLive(out)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Lab < out[j].Lab })
	return out, nil
}

func markLive(out []Leftover) {
	liveLab := map[string]bool{}
	for i := range out {
		if liveOwner(out[i].Owner) {
			out[i].Live = true
			liveLab[out[i].Lab] = true
		}
	}
	for i := range out {
		if out[i].Owner == "" && liveLab[out[i].Lab] {
			out[i].Live = true
		}
	}
}

// RemoveLeftovers removes every leftover that is not live, in order: port
// forwards, nodes, then networks and firewall tables.
func (e *Engine) RemoveLeftovers(ctx context.Context, list []Leftover) error {
	var errs []error
	for _, kind := range []string{"forward", "node", "bridge", "nftables"} {
		for _, l := range list {
			if l.Kind != kind || l.Live || l.remove == nil {
				continue
			}
			if err := l.remove(ctx); err != nil {
				errs = append(errs, fmt.Errorf("%s %s: %w", l.Kind, l.Name, err))
				continue
			}
			e.begin(ctx, l.Lab).emit("", PhaseDestroy, "removed %s %s", l.Kind, l.Name)
		}
	}
	return errors.Join(errs...)
}
