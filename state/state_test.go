package state

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSaveLoadRoundTrip(t *testing.T) {
	s := Open(filepath.Join(t.TempDir(), ".lab"))
	st, err := s.Load()
	require.NoError(t, err)
	assert.Nil(t, st)

	st = New("x", "lab.yaml")
	st.Nodes["pg1"] = &Node{Name: "pg1", Role: "pg", Index: 1, Provider: "lxc", ID: "x-pg1", Phase: PhaseRunning}
	require.NoError(t, s.Save(st))
	got, err := s.Load()
	require.NoError(t, err)
	assert.Equal(t, st, got)

	// No temporary files are left behind.
	entries, err := os.ReadDir(s.Dir)
	require.NoError(t, err)
	require.Len(t, entries, 1)
	assert.Equal(t, "state.json", entries[0].Name())
}

func TestLoadRejectsGarbage(t *testing.T) {
	s := Open(t.TempDir())
	require.NoError(t, os.WriteFile(filepath.Join(s.Dir, "state.json"), []byte("{"), 0o644))
	_, err := s.Load()
	assert.ErrorContains(t, err, "state.json")
	require.NoError(t, os.WriteFile(filepath.Join(s.Dir, "state.json"), []byte(`{"version": 99}`), 0o644))
	_, err = s.Load()
	assert.ErrorContains(t, err, "state version 99")
}

func TestLockNamesHolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".lab")
	a, b := Open(dir), Open(dir)
	require.NoError(t, a.Lock(context.Background(), false, 0))
	err := b.Lock(context.Background(), false, 0)
	var le *LockedError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, os.Getpid(), le.PID)
	assert.Contains(t, err.Error(), "holds")

	// Waiting gives up at the deadline, then succeeds once the holder is gone.
	start := time.Now()
	require.Error(t, b.Lock(context.Background(), true, 300*time.Millisecond))
	assert.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond)
	go func() { time.Sleep(200 * time.Millisecond); a.Unlock() }()
	require.NoError(t, b.Lock(context.Background(), true, 5*time.Second))
	b.Unlock()
}

func TestNodeNamesOrder(t *testing.T) {
	st := New("x", "")
	for _, n := range []*Node{{Name: "web10", Role: "web", Index: 10}, {Name: "web2", Role: "web", Index: 2}, {Name: "db1", Role: "db", Index: 1}} {
		st.Nodes[n.Name] = n
	}
	assert.Equal(t, []string{"db1", "web2", "web10"}, st.NodeNames())
}
