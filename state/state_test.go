package state

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
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

// A damaged state is refused with what is wrong and the way out, never
// half-read: null records, keys that do not match, ids that are paths,
// bridges that are not lab bridges, a FIFO.
func TestLoadRefusesDamagedState(t *testing.T) {
	for body, want := range map[string]string{
		`{"version":1,"nodes":{"web1":null}}`:                                                       "nodes.web1 is null",
		`{"version":1,"networks":{"lan":null}}`:                                                     "networks.lan is null",
		`{"version":1,"forwards":{"x":null}}`:                                                       "forwards.x is null",
		`{"version":1,"nodes":{"web1":{"name":"web2","id":"x_web2"}}}`:                              `nodes.web1 records node "web2"`,
		`{"version":1,"nodes":{"web1":{"name":"web1","id":".."}}}`:                                  `nodes.web1: bad id ".."`,
		`{"version":1,"nodes":{"web1":{"name":"web1","id":"a/b"}}}`:                                 `bad id "a/b"`,
		`{"version":1,"networks":{"lan":{"name":"lan","bridge":"eth0","subnet":"10.1.0.0/24"}}}`:    `"eth0" is not a lab bridge`,
		`{"version":1,"networks":{"lan":{"name":"wan","bridge":"lab-x-0","subnet":"10.1.0.0/24"}}}`: `networks.lan records network "wan"`,
	} {
		s := Open(t.TempDir())
		require.NoError(t, os.WriteFile(filepath.Join(s.Dir, "state.json"), []byte(body), 0o644))
		_, err := s.Load()
		require.Error(t, err, body)
		assert.Contains(t, err.Error(), want)
		assert.Contains(t, err.Error(), "lab destroy --name")
	}
	s := Open(t.TempDir())
	require.NoError(t, syscall.Mkfifo(filepath.Join(s.Dir, "state.json"), 0o644))
	_, err := s.Load()
	assert.ErrorContains(t, err, "not a regular file")
}
