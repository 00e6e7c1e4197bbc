package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/labctl/lab/labtest"
)

// lab graph draws a lab file; each lab's README shows what it draws today.
func TestGraph(t *testing.T) {
	bin := labtest.Binary(t)
	file := filepath.Join(labtest.Root(), "labs", "todomvc", "lab.yaml")
	run := func(args ...string) (string, int) {
		cmd := exec.Command(bin, append([]string{"-f", file, "graph"}, args...)...)
		out, err := cmd.Output()
		var ee *exec.ExitError
		if err != nil {
			require.ErrorAs(t, err, &ee)
			return string(out), ee.ExitCode()
		}
		return string(out), 0
	}
	mermaid, code := run()
	require.Equal(t, 0, code)
	assert.Contains(t, mermaid, "  role_app -. after .-> role_pg\n")
	assert.Contains(t, mermaid, `n_pg2["pg2<br/>10.80.0.32 · lxc"]`)
	// Each lab's README shows its graph as it is today.
	for _, lab := range []string{"todomvc", "swefreq", "eddie", "sneklog"} {
		dir := filepath.Join(labtest.Root(), "labs", lab)
		out, err := exec.Command(bin, "-f", filepath.Join(dir, "lab.yaml"), "graph").Output()
		require.NoError(t, err, lab)
		readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
		require.NoError(t, err)
		assert.Contains(t, string(readme), "```mermaid\n"+string(out)+"```", "labs/%s/README.md: paste the output of lab graph", lab)
	}

	dot, code := run("--format", "dot")
	require.Equal(t, 0, code)
	assert.True(t, strings.HasPrefix(dot, `digraph "lab todomvc" {`), dot)
	_, code = run("--format", "svg")
	assert.Equal(t, 2, code)
}
