package state

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSnapshotStore(t *testing.T) {
	s := Open(filepath.Join(t.TempDir(), ".lab"))
	for _, bad := range []string{"a/b", "", "..", ".hidden", "x y"} {
		assert.Error(t, CheckSnapshotName(bad), bad)
	}
	require.NoError(t, CheckSnapshotName("v1.0_pre-burn"))

	tmp, err := s.NewSnapshotDir("s1")
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(NodeDir(tmp, "pg1"), 0o755))
	st := New("x", "lab.yaml")
	st.Nodes["pg1"] = &Node{Name: "pg1", Role: "pg", ID: "x_pg1"}
	require.NoError(t, s.CommitSnapshot(tmp, &Snapshot{Name: "s1", Lab: "x", Created: time.Now().UTC(), Whole: true, Nodes: []string{"pg1"}, State: st}))
	got, err := s.LoadSnapshot("s1")
	require.NoError(t, err)
	assert.Equal(t, []string{"pg1"}, got.Nodes)
	assert.Equal(t, "x_pg1", got.State.Nodes["pg1"].ID)
	_, err = s.LoadSnapshot("nope")
	assert.ErrorIs(t, err, ErrNoSnapshot)

	// A save that died leaves only its temporary folder, which the next
	// list removes; it never shows as a snapshot.
	dead := filepath.Join(s.SnapshotDir(), ".saving-s2-999999999-123")
	require.NoError(t, os.MkdirAll(dead, 0o755))
	list, err := s.ListSnapshots()
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.NoDirExists(t, dead)

	require.NoError(t, s.RemoveSnapshot("s1"))
	assert.ErrorIs(t, s.RemoveSnapshot("s1"), ErrNoSnapshot)
}

// destroy keeps snapshots, but an empty snapshots folder does not keep .lab.
func TestRemoveAllKeepsSnapshots(t *testing.T) {
	s := Open(filepath.Join(t.TempDir(), ".lab"))
	require.NoError(t, s.Save(New("x", "lab.yaml")))
	require.NoError(t, os.MkdirAll(NodeDir(s.SnapshotPath("s1"), "n1"), 0o755))
	require.NoError(t, s.RemoveAll(false))
	assert.DirExists(t, s.SnapshotPath("s1"))
	assert.NoFileExists(t, filepath.Join(s.Dir, "state.json"))
	require.NoError(t, os.RemoveAll(s.SnapshotPath("s1")))
	require.NoError(t, s.RemoveAll(false))
	assert.NoDirExists(t, s.SnapshotDir())
}
