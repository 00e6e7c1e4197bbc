package engine

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/labctl/lab/providers"
)

// A restore that stops midway (here: one node's disk cannot be put back)
// leaves that node marked; the next up puts the snapshot's disk back
// instead of making the node afresh or keeping its newer disk.
func TestUpFinishesAnInterruptedRestore(t *testing.T) {
	r := newRig(t)
	e := r.engine()
	ctx := context.Background()
	top := r.topo(t, 2, 0)
	_, err := e.Up(ctx, top, UpOptions{})
	require.NoError(t, err)
	put := func(node, s string) {
		require.NoError(t, r.p.CopyIn(ctx, providers.Node{Name: node}, strings.NewReader(s), "/root/x", 0o644))
	}
	put("pg1", "one")
	put("pg2", "one")
	_, err = e.SnapshotSave(ctx, top, "s1", nil)
	require.NoError(t, err)
	put("pg1", "two")
	put("pg2", "two")

	r.p.Fail["restoredisk/pg2"] = errors.New("disk full")
	require.Error(t, e.SnapshotRestore(ctx, top, "s1", nil))
	delete(r.p.Fail, "restoredisk/pg2")
	st, _, err := e.Status(ctx, top)
	require.NoError(t, err)
	notes := map[string]string{}
	for _, s := range st {
		notes[s.Name] = s.Note
	}
	assert.Equal(t, "its restore of snapshot s1 was interrupted: lab up finishes it", notes["pg2"])

	_, err = e.Up(ctx, top, UpOptions{})
	require.NoError(t, err)
	for _, n := range []string{"pg1", "pg2"} {
		got, _ := r.p.File(n, "/root/x")
		assert.Equal(t, "one", got, n)
	}
	assert.ElementsMatch(t, []string{"adm1", "pg1", "pg2"}, running(r.p))
	assert.Contains(t, lastMessages(r.rec, 30), "finishing the interrupted restore of snapshot s1: ")
	assert.Empty(t, r.p.Calls("destroy"), "no node is made afresh")

	// A snapshot removed meanwhile: a node the restore had not reached keeps
	// its disk; one it was putting back is half-made, and is made afresh.
	put("pg1", "three")
	st0, err := e.Store.Load()
	require.NoError(t, err)
	st0.Nodes["pg1"].Restoring = "s1"
	require.NoError(t, e.Store.Save(st0))
	r.p.Fail["restoredisk/pg2"] = errors.New("disk full")
	require.Error(t, e.SnapshotRestore(ctx, top, "s1", []string{"pg2"}))
	delete(r.p.Fail, "restoredisk/pg2")
	require.NoError(t, e.SnapshotRemove("s1"))
	_, err = e.Up(ctx, top, UpOptions{})
	require.NoError(t, err)
	said := lastMessages(r.rec, 30)
	assert.Contains(t, said, "the snapshot is gone: pg1 keep their disks")
	assert.Contains(t, said, "the snapshot is gone: pg2 were half restored and are made afresh")
	got, _ := r.p.File("pg1", "/root/x")
	assert.Equal(t, "three", got)
	_, had := r.p.File("pg2", "/root/x")
	assert.False(t, had, "pg2 is made afresh")
	assert.ElementsMatch(t, []string{"adm1", "pg1", "pg2"}, running(r.p))
}

func lastMessages(r *Recorder, n int) string {
	var b strings.Builder
	for i := max(0, len(r.Events)-n); i < len(r.Events); i++ {
		b.WriteString(r.Events[i].Message + "\n")
	}
	return b.String()
}
