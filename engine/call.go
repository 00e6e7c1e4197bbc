package engine

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labctl/lab/providers"
	"github.com/labctl/lab/state"
	"github.com/labctl/lab/topology"
)

// call is what one engine call works on, made once by open: the lab file,
// the lab expanded with its recorded subnets, the state, the event sink and
// (for calls that change the lab) its lock.
type call struct {
	e     *Engine
	ctx   context.Context
	top   *topology.Topology // nil for destroy, which works from the state alone
	lab   *topology.Lab
	st    *state.State
	name  string
	start time.Time

	mu     sync.Mutex // guards state writes
	locked bool
	saved  time.Time // the last save of updateSoon's
	dirty  bool      // a change updateSoon has not saved yet

	from     *state.Snapshot // up --from: the snapshot new nodes come from
	takeFrom bool            // and they may take its disks (it goes after this up)

	// portsMoved: a node whose provider names its ports when it starts
	// (providers.PortNamer) started; refreshPorts applies the policy again.
	portsMoved atomic.Bool
	// placed: where the recorded nodes live, once asked (locations).
	placed map[string]providers.Location
}

// begin starts a call that only emits events (no lab file, no state).
func (e *Engine) begin(ctx context.Context, name string) *call {
	return &call{e: e, ctx: ctx, name: name, start: time.Now()}
}

// open starts a call on a lab file: with lock, it takes the lab's lock
// first (and close releases it); then it loads the state and expands the
// topology with the subnets the state recorded.
func (e *Engine) open(ctx context.Context, top *topology.Topology, lock bool) (*call, error) {
	c := e.begin(ctx, top.Name)
	c.top = top
	if lock {
		if err := c.lock(); err != nil {
			return nil, err
		}
	}
	st, err := e.load(top)
	if err == nil {
		c.st = st
		c.lab, err = e.expand(ctx, top, st)
	}
	if err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

func (c *call) lock() error {
	if err := c.e.Store.Lock(c.ctx, c.e.LockWait > 0, c.e.LockWait); err != nil {
		return err
	}
	c.locked = true
	if pid := c.e.Store.Recovered; pid > 0 {
		c.emit("", PhaseLock, "recovered the lock of process %d, which ended without releasing it", pid)
	}
	return nil
}

// close releases what open took.
func (c *call) close() {
	if c.locked {
		c.e.Store.Unlock()
		c.locked = false
	}
}

// load returns the lab's state, or a new one.
func (e *Engine) load(top *topology.Topology) (*state.State, error) {
	st, err := e.Store.Load()
	if err != nil {
		return nil, err
	}
	if st == nil {
		return state.New(top.Name, top.File), nil
	}
	if st.Lab != top.Name && !st.Empty() {
		return nil, fmt.Errorf("%s holds lab %q, but %s names %q: run lab destroy with the old file first, or use another folder", e.Store.Dir, st.Lab, top.File, top.Name)
	}
	st.Lab, st.File = top.Name, top.File
	return st, nil
}

func (c *call) emit(node, phase, format string, args ...any) {
	if c.e.Events == nil {
		return
	}
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	ev := Event{Time: time.Now(), Lab: c.name, Node: node, Phase: phase, Message: msg, Elapsed: time.Since(c.start).Seconds()}
	if phase == PhaseFailed {
		ev.Error, ev.Message = msg, ""
	}
	c.e.Events.Emit(ev)
}

// update changes the state under the call's mutex and saves it.
func (c *call) update(f func()) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	f()
	return c.e.Store.Save(c.st)
}

// saveEvery is how often updateSoon saves a changed state.
const saveEvery = 250 * time.Millisecond

// updateSoon changes the state like update, but saves it at most every
// saveEvery; flush saves what is left. It is for changes that are safe to
// lose: a record that outlives its node (a destroyed container) is one the
// next destroy or up finds absent and handles. A 100-node destroy saved the
// whole state, with an fsync, once per node, one after the other.
func (c *call) updateSoon(f func()) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	f()
	c.dirty = true
	if time.Since(c.saved) < saveEvery {
		return nil
	}
	c.saved, c.dirty = time.Now(), false
	return c.e.Store.Save(c.st)
}

// flush saves what updateSoon changed and has not saved.
func (c *call) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.dirty {
		return nil
	}
	c.dirty = false
	return c.e.Store.Save(c.st)
}
