package engine

import (
	"fmt"
	"sort"
	"strconv"

	"github.com/labctl/lab/network"
	"github.com/labctl/lab/state"
	"github.com/labctl/lab/topology"
)

// wantedForward is a port forward the topology asks for.
type wantedForward struct {
	key  string
	path string // field path, for errors
	rec  state.Forward
}

// forwards lists the topology's port forwards: each to the node it names,
// or to the role's first node.
func forwards(lab *topology.Lab) []wantedForward {
	var out []wantedForward
	for ri, r := range lab.Topology.Nodes {
		nodes := lab.RoleNodes(r.Role)
		for pi, pf := range r.Ports {
			if len(nodes) == 0 {
				continue
			}
			n := nodes[0]
			if pf.Node != "" {
				if m := lab.Node(pf.Node); m != nil {
					n = *m
				}
			}
			rec := state.Forward{Address: pf.Address, Host: pf.Host, Node: n.Name, Target: n.IP().String() + ":" + strconv.Itoa(pf.Port)}
			out = append(out, wantedForward{
				key:  pf.Address + ":" + strconv.Itoa(pf.Host),
				path: fmt.Sprintf("nodes[%d].ports[%d]", ri, pi),
				rec:  rec,
			})
		}
	}
	return out
}

func netForward(lab string, f state.Forward) network.Forward {
	return network.Forward{Lab: lab, Address: f.Address, Host: f.Host, Target: f.Target}
}

// checkPorts refuses, as a problem with the lab file (exit 2), host ports
// that something other than this lab already listens on.
func (c *call) checkPorts() error {
	c.reapForwards()
	lab, st := c.lab, c.st
	errs := &topology.Errors{File: lab.Topology.File}
	for _, w := range forwards(lab) {
		if old := st.Forwards[w.key]; old != nil && network.ForwardAlive(old.PID, netForward(lab.Name, *old)) {
			continue // ours
		}
		if err := network.PortFree(w.rec.Address, w.rec.Host); err != nil {
			errs.List = append(errs.List, topology.FieldError{File: lab.Topology.File, Path: w.path, Line: lab.Topology.Line(w.path),
				Msg: fmt.Sprintf("host port %s:%d is taken by another program (%v)", w.rec.Address, w.rec.Host, err)})
		}
	}
	if len(errs.List) > 0 {
		return errs
	}
	return nil
}

// syncForwards makes the running forwards what the topology asks for.
func (c *call) syncForwards() error {
	lab, st := c.lab, c.st
	want := map[string]wantedForward{}
	for _, w := range forwards(lab) {
		want[w.key] = w
	}
	var keys []string
	for k := range st.Forwards {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		old := st.Forwards[k]
		if w, ok := want[k]; ok && w.rec.Target == old.Target && network.ForwardAlive(old.PID, netForward(lab.Name, *old)) {
			delete(want, k) // running as it should
			continue
		}
		network.StopForward(old.PID, netForward(lab.Name, *old))
		if err := c.update(func() { delete(st.Forwards, k) }); err != nil {
			return err
		}
	}
	for k, w := range want {
		rec := w.rec
		pid, err := network.StartForward(c.e.Store.LogDir(), netForward(lab.Name, rec))
		if err != nil {
			return fmt.Errorf("%s: forward %s: %w", w.path, k, err)
		}
		rec.PID = pid
		if err := c.update(func() { st.Forwards[k] = &rec }); err != nil {
			return err
		}
		c.emit(rec.Node, PhaseForward, "%s:%d → %s", rec.Address, rec.Host, rec.Target)
	}
	return nil
}

// stopForwards ends every forward of the lab (halt, destroy).
func (c *call) stopForwards() error {
	st := c.st
	for k, f := range st.Forwards {
		network.StopForward(f.PID, netForward(st.Lab, *f))
		if err := c.update(func() { delete(st.Forwards, k) }); err != nil {
			return err
		}
	}
	c.reapForwards()
	return nil
}

// reapForwards ends the lab's forwards that its state does not record
// (after stopForwards: all that are left): a lab command killed between
// starting socat and recording it leaves one, holding its port. Forwards
// are tagged with the lab's name, which no two labs on a machine share
// (their bridges would collide).
func (c *call) reapForwards() {
	st := c.st
	recorded := map[int]bool{}
	for _, f := range st.Forwards {
		recorded[f.PID] = true
	}
	for _, pid := range network.ForwardPIDs(st.Lab) {
		if !recorded[pid] {
			network.StopForwardPID(st.Lab, pid)
		}
	}
}

// Forwards lists the lab's port forwards that are running.
func (e *Engine) Forwards() ([]state.Forward, error) {
	st, err := e.Store.Load()
	out := []state.Forward{}
	if err != nil || st == nil {
		return out, err
	}
	for _, f := range st.Forwards {
		if network.ForwardAlive(f.PID, netForward(st.Lab, *f)) {
			out = append(out, *f)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Host < out[j].Host })
	return out, nil
}
