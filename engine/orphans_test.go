package engine

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// What a live lab made is live, and so is what records no folder beside
// it; a user's network (made through the helper) is never root's orphan.
func TestMarkLive(t *testing.T) {
	live := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(live, "state.json"), []byte("{}"), 0o600))
	out := []Leftover{
		{Lab: "a", Kind: "bridge", Owner: live},
		{Lab: "a", Kind: "nftables"},
		{Lab: "b", Kind: "bridge", Owner: filepath.Join(t.TempDir(), "gone")},
		{Lab: "b", Kind: "nftables"},
		{Lab: "c", Kind: "bridge", Owner: "uid 1001"},
		{Lab: "c", Kind: "nftables"},
	}
	markLive(out)
	var got []bool
	for _, l := range out {
		got = append(got, l.Live)
	}
	assert.Equal(t, []bool{true, true, false, false, true, true}, got)
}
