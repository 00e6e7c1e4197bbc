package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/labctl/lab/providers"
	"github.com/labctl/lab/state"
)

// Destroy removes every node and network the state records, then the state
// itself. It works from the state alone, so a broken lab file or a
// half-finished up never stops it.
// With snapshots, the lab's saved snapshots go too; without, they stay in
// .lab/snapshots for a later restore or up --from.
func (e *Engine) Destroy(ctx context.Context, labName string, snapshots bool) error {
	c := e.begin(ctx, labName)
	if err := c.lock(); err != nil {
		return err
	}
	if err := c.destroyAll(snapshots); err != nil {
		c.close()
		return err
	}
	c.close()
	// The last trace: the lock and the folder.
	_ = os.Remove(e.Store.LockPath())
	_ = os.Remove(e.Store.Dir)
	return nil
}

func (c *call) destroyAll(snapshots bool) error {
	st, err := c.e.Store.Load()
	if err != nil {
		return err
	}
	if st != nil {
		c.st, c.name = st, st.Lab
		if err := c.stopForwards(); err != nil {
			return err
		}
		if err := c.destroyNodes(st.NodeNames()); err != nil {
			return err
		}
		if c.e.Networks != nil {
			if err := c.e.Networks.RemoveLab(c.ctx, st.Lab); err != nil {
				return err
			}
		}
		for name, n := range st.Networks {
			if err := c.removeNetwork(name, n); err != nil {
				return err
			}
		}
	}
	return c.e.Store.RemoveAll(snapshots)
}

// destroyNodes removes recorded nodes in parallel.
func (c *call) destroyNodes(names []string) error {
	// The records and targets are read before any goroutine starts: those
	// delete from the state while the loop would still read it.
	type victim struct {
		rec *state.Node
		tgt providers.Node
	}
	var victims []victim
	c.mu.Lock()
	for _, name := range names {
		if rec := c.st.Nodes[name]; rec != nil {
			victims = append(victims, victim{rec, c.e.recordTarget(c.st, rec)})
		}
	}
	c.mu.Unlock()
	g, gctx := errgroup.WithContext(c.ctx)
	g.SetLimit(c.e.workers())
	for _, v := range victims {
		rec := v.rec
		g.Go(func() error {
			t := time.Now()
			p, err := c.e.provider(rec.Provider)
			if err != nil {
				return fmt.Errorf("node %s: %w", rec.Name, err)
			}
			if err := p.Destroy(gctx, v.tgt); err != nil {
				c.emit(rec.Name, PhaseFailed, "%v", err)
				return err
			}
			_ = os.Remove(filepath.Join(c.e.Store.LogDir(), rec.Name+".log"))
			c.emit(rec.Name, PhaseDestroy, "destroyed (%.2fs)", time.Since(t).Seconds())
			return c.updateSoon(func() { delete(c.st.Nodes, rec.Name) })
		})
	}
	err := g.Wait()
	if ferr := c.flush(); err == nil {
		err = ferr
	}
	return err
}
