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

// lab graph draws a lab file; the todomvc README shows what it draws today.
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
	assert.Contains(t, mermaid, "  role_nginx -. after .-> role_pg\n")
	assert.Contains(t, mermaid, `n_pg2["pg2<br/>10.80.0.32 · lxc"]`)
	readme, err := os.ReadFile(filepath.Join(labtest.Root(), "labs", "todomvc", "README.md"))
	require.NoError(t, err)
	assert.Contains(t, string(readme), "```mermaid\n"+mermaid+"```", "labs/todomvc/README.md: paste the output of lab graph")

	dot, code := run("--format", "dot")
	require.Equal(t, 0, code)
	assert.True(t, strings.HasPrefix(dot, `digraph "lab todomvc" {`), dot)
	_, code = run("--format", "svg")
	assert.Equal(t, 2, code)
}
