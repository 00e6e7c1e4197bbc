package topology

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// within: is a duration of a second or more; a test without it runs once.
func TestTestWithin(t *testing.T) {
	top := loadString(t, "name: w\nnodes: [{role: a}]\ntests:\n  - {run: 'true', within: 30s}\n  - {run: 'true'}\n")
	assert.Equal(t, 30*time.Second, top.Tests[0].Patience())
	assert.Zero(t, top.Tests[1].Patience())

	p := filepath.Join(t.TempDir(), "lab.yaml")
	require.NoError(t, os.WriteFile(p, []byte("name: w\nnodes: [{role: a}]\ntests:\n  - {run: 'true', within: soon}\n  - {run: 'true', within: 10ms}\n"), 0o644))
	_, err := Load(p)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `lab.yaml:4: tests[0].within: "soon": want a duration such as 90s or 2m`)
	assert.Contains(t, err.Error(), `lab.yaml:5: tests[1].within: "10ms" is too short: at least 1s`)
}
