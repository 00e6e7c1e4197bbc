package testrun

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/labctl/lab/topology"
)

func hostRunner(t *testing.T) (*runner, *bytes.Buffer) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "tests"), 0o755))
	var out bytes.Buffer
	return &runner{o: Options{Out: &out, Top: &topology.Topology{Dir: dir}}, dir: dir}, &out
}

// A test with within: fails twice, then passes: one PASS, every run in its
// log, only the last run's output on the screen.
func TestWithinRunsAgainUntilItPasses(t *testing.T) {
	r, out := hostRunner(t)
	run := `c=$(cat tries 2>/dev/null || echo 0); c=$((c+1)); echo $c > tries; echo "run $c"; test $c -ge 3`
	res := r.run(context.Background(), 0, test{Test: topology.Test{Name: "converges", Run: run, Within: "10s"}})
	assert.True(t, res.Passed, res.Error)
	assert.Equal(t, 0, res.Code)
	assert.Contains(t, out.String(), "--- PASS: converges")
	assert.Contains(t, out.String(), "run 3")
	assert.NotContains(t, out.String(), "run 1", "earlier runs stay in the log")
	log, err := os.ReadFile(filepath.Join(r.dir, res.Log))
	require.NoError(t, err)
	assert.Contains(t, string(log), "run 1\nlab test: run 1: exit 1; again in 1s (within 10s)")
	assert.Contains(t, string(log), "run 3")
}

// A test that never passes fails with its last exit code once within: is
// over, and says how long and how often it was tried.
func TestWithinGivesUp(t *testing.T) {
	r, out := hostRunner(t)
	res := r.run(context.Background(), 0, test{Test: topology.Test{Name: "never", Run: "echo not-yet; exit 5", Within: "1s"}})
	assert.False(t, res.Passed)
	assert.Equal(t, 5, res.Code)
	assert.Regexp(t, `^exit 5, still after 1s \(its within\) and [23] runs$`, res.Error)
	assert.Contains(t, out.String(), "--- FAIL: never (exit 5, still after 1s")
	assert.Contains(t, res.Tail, "not-yet")
}

// Without within: a failing test runs once.
func TestNoWithinRunsOnce(t *testing.T) {
	r, _ := hostRunner(t)
	res := r.run(context.Background(), 0, test{Test: topology.Test{Name: "once", Run: "c=$(cat tries 2>/dev/null || echo 0); echo $((c+1)) > tries; exit 1"}})
	assert.False(t, res.Passed)
	b, err := os.ReadFile(filepath.Join(r.o.Top.Dir, "tries"))
	require.NoError(t, err)
	assert.Equal(t, "1\n", string(b))
}
