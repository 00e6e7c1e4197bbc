package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/labctl/lab/internal/userns"
	"github.com/labctl/lab/providers"
	"github.com/labctl/lab/state"
	"github.com/labctl/lab/topology"
)

// SnapshotSave saves the named nodes (none: the whole lab) as snapshot name.
// Every running node is frozen before the first is copied and thawed after
// the last, so the copies are one moment in time.
func (e *Engine) SnapshotSave(ctx context.Context, top *topology.Topology, name string, nodes []string) (*state.Snapshot, error) {
	c, err := e.open(ctx, top, true)
	if err != nil {
		return nil, err
	}
	defer c.close()
	if err := state.CheckSnapshotName(name); err != nil {
		return nil, &UsageError{err.Error()}
	}
	if _, err := os.Stat(e.Store.SnapshotPath(name)); err == nil {
		return nil, usagef("snapshot %s exists: lab snapshot rm %s first, or choose another name", name, name)
	}
	whole := len(nodes) == 0
	if whole {
		nodes = c.st.NodeNames()
	}
	if len(nodes) == 0 {
		return nil, usagef("lab %s has no nodes to save: run lab up", c.lab.Name)
	}
	if err := c.snapshottable(nodes); err != nil {
		return nil, err
	}
	tmp, err := e.Store.NewSnapshotDir(name)
	if err != nil {
		return nil, err
	}
	saved := false
	defer func() {
		if !saved {
			_ = userns.RemoveAll(tmp)
		}
	}()
	frozen, err := c.copyDisks(nodes, tmp)
	if err != nil {
		return nil, err
	}
	snap := &state.Snapshot{Name: name, Lab: c.lab.Name, Created: time.Now().UTC(), Whole: whole, Nodes: nodes,
		FileHash: fileHash(top), State: c.stateOf(nodes), Frozen: frozen.Seconds(), Size: duSize(tmp)}
	if err := e.Store.CommitSnapshot(tmp, snap); err != nil {
		return nil, err
	}
	saved = true
	c.emit("", PhaseSnapshot, "saved %s: %d nodes, %d MB, frozen %.2fs", name, len(nodes), snap.Size>>20, snap.Frozen)
	return snap, nil
}

// snapshottable refuses nodes the lab does not record, or whose provider
// cannot snapshot.
func (c *call) snapshottable(nodes []string) error {
	for _, n := range nodes {
		rec := c.st.Nodes[n]
		if rec == nil {
			if c.lab.Node(n) != nil {
				return usagef("node %s is not created yet: run lab up", n)
			}
			return &UnknownNodeError{fmt.Sprintf("no node %q in lab %s", n, c.lab.Name)}
		}
		p, err := c.e.provider(rec.Provider)
		if err != nil {
			return err
		}
		if _, ok := p.(providers.Snapshotter); !ok {
			return usagef("node %s: provider %s cannot snapshot", n, p.Name())
		}
	}
	return nil
}

// copyDisks freezes the running nodes, copies every node's disk into dir,
// thaws them, and returns how long they were frozen.
func (c *call) copyDisks(nodes []string, dir string) (time.Duration, error) {
	start := time.Now()
	thaw, err := c.freeze(nodes)
	defer func() { thaw() }()
	if err != nil {
		return 0, err
	}
	g, gctx := errgroup.WithContext(c.ctx)
	g.SetLimit(4)
	for _, n := range nodes {
		g.Go(func() error {
			p, tgt, err := c.nodeProvider(n)
			if err != nil {
				return err
			}
			if err := p.(providers.Snapshotter).SaveDisk(gctx, tgt, state.NodeDir(dir, n)); err != nil {
				return fmt.Errorf("node %s: save: %w", n, err)
			}
			return nil
		})
	}
	err = g.Wait()
	thaw()
	thaw = func() {}
	return time.Since(start), err
}

// freeze pauses the running nodes (not those a pause fault holds already)
// and returns what thaws them again.
func (c *call) freeze(nodes []string) (func(), error) {
	var frozen []string
	thaw := func() {
		for _, n := range frozen {
			if p, tgt, err := c.nodeProvider(n); err == nil {
				_ = p.(providers.Pauser).Resume(context.WithoutCancel(c.ctx), tgt)
			}
		}
		frozen = nil
	}
	for _, n := range nodes {
		p, tgt, err := c.nodeProvider(n)
		if err != nil {
			return thaw, err
		}
		if st, _ := p.State(c.ctx, tgt); st != providers.Running {
			continue
		}
		pp, ok := p.(providers.Pauser)
		if !ok {
			return thaw, usagef("node %s: provider %s cannot freeze a node for a consistent copy", n, p.Name())
		}
		if err := pp.Pause(c.ctx, tgt); err != nil {
			return thaw, err
		}
		frozen = append(frozen, n)
	}
	return thaw, nil
}

// stateOf is a copy of the lab's state with only the given nodes.
func (c *call) stateOf(nodes []string) *state.State {
	c.mu.Lock()
	b, _ := json.Marshal(c.st)
	c.mu.Unlock()
	var st state.State
	_ = json.Unmarshal(b, &st)
	keep := map[string]bool{}
	for _, n := range nodes {
		keep[n] = true
	}
	for n := range st.Nodes {
		if !keep[n] {
			delete(st.Nodes, n)
		}
	}
	st.Faults, st.Forwards, st.NextFault = nil, nil, 0
	return &st
}

func fileHash(top *topology.Topology) string {
	b, err := os.ReadFile(top.File)
	if err != nil {
		return ""
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}

func duSize(dir string) int64 {
	out, err := exec.Command("du", "-sb", dir).Output()
	if err != nil {
		return 0
	}
	var n int64
	fmt.Sscanf(string(out), "%d", &n)
	return n
}

// Snapshots lists the lab's snapshots.
func (e *Engine) Snapshots() ([]*state.Snapshot, error) { return e.Store.ListSnapshots() }

// SnapshotRemove deletes a snapshot.
func (e *Engine) SnapshotRemove(name string) error {
	err := e.Store.RemoveSnapshot(name)
	if errors.Is(err, state.ErrNoSnapshot) {
		return usagef("no snapshot %q (lab snapshot list)", name)
	}
	return err
}

// tar runs tar with what a snapshot needs kept (for a user, as root of
// its namespace: root in its nodes owns their files). The archive goes
// through stdin or stdout, read and written by lab itself, so the file is
// the user's.
func tar(ctx context.Context, stdin io.Reader, stdout io.Writer, args ...string) error {
	cmd, err := userns.Command(ctx, "tar", append([]string{"--zstd", "--xattrs", "--xattrs-include=*", "--acls", "--numeric-owner"}, args...)...)
	if err != nil {
		return err
	}
	var stderr strings.Builder
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("tar: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// SnapshotExport writes a snapshot as one file (tar with zstd), for a CI cache.
func (e *Engine) SnapshotExport(ctx context.Context, name, file string) error {
	if _, err := e.Store.LoadSnapshot(name); err != nil {
		if errors.Is(err, state.ErrNoSnapshot) {
			return usagef("no snapshot %q (lab snapshot list)", name)
		}
		return err
	}
	tmp := file + ".lab-tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("export %s: %w", name, err)
	}
	err = tar(ctx, nil, f, "-cf", "-", "-C", e.Store.SnapshotDir(), name)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("export %s: %w", name, err)
	}
	return os.Rename(tmp, file)
}

// SnapshotImport reads a file made by SnapshotExport into the lab's
// snapshots and returns the snapshot. A snapshot of that name already here
// is refused, unless reuse and it is the very one the file holds.
func (e *Engine) SnapshotImport(ctx context.Context, file string, reuse bool) (*state.Snapshot, error) {
	names, err := archiveTop(ctx, file)
	if err != nil {
		return nil, err
	}
	if len(names) != 1 || state.CheckSnapshotName(names[0]) != nil {
		return nil, usagef("%s: not a lab snapshot (it holds %s)", file, strings.Join(names, ", "))
	}
	name := names[0]
	have, _ := e.Store.LoadSnapshot(name)
	if _, err := os.Stat(e.Store.SnapshotPath(name)); err == nil && !reuse {
		return nil, usagef("snapshot %s exists already: lab snapshot rm %s first", name, name)
	}
	tmp, err := e.Store.NewSnapshotDir(name)
	if err != nil {
		return nil, err
	}
	defer userns.RemoveAll(tmp)
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", file, err)
	}
	err = tar(ctx, f, nil, "-xf", "-", "-C", tmp)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", file, err)
	}
	snap, err := state.ReadSnapshot(filepath.Join(tmp, name))
	if err != nil {
		return nil, usagef("%s: %v", file, err)
	}
	if have != nil {
		if have.Created.Equal(snap.Created) && have.Lab == snap.Lab {
			return have, nil
		}
		return nil, usagef("snapshot %s exists already and is not the one in %s: lab snapshot rm %s first", name, file, name)
	}
	if err := os.Rename(filepath.Join(tmp, name), e.Store.SnapshotPath(name)); err != nil {
		return nil, err
	}
	return snap, nil
}

// archiveTop lists the top-level names of an archive, refusing paths that
// would leave the folder it is unpacked in.
func archiveTop(ctx context.Context, file string) ([]string, error) {
	if fi, err := os.Stat(file); err != nil || !fi.Mode().IsRegular() {
		return nil, usagef("%s: not a snapshot file", file)
	}
	out, err := exec.CommandContext(ctx, "tar", "--zstd", "-tf", file).Output()
	if err != nil {
		return nil, usagef("%s: not a snapshot file (tar --zstd cannot read it)", file)
	}
	seen := map[string]bool{}
	var names []string
	for _, p := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.HasPrefix(p, "/") || strings.Contains("/"+p+"/", "/../") {
			return nil, usagef("%s: a path leaves the snapshot: %s", file, p)
		}
		top, _, _ := strings.Cut(p, "/")
		if top != "" && !seen[top] {
			seen[top] = true
			names = append(names, top)
		}
	}
	sort.Strings(names)
	return names, nil
}
