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

// Every malformed lab file makes lab exit 2 with the file and field path in
// its error, and never panic.
func TestBadInputExitsTwo(t *testing.T) {
	bin := labtest.Binary(t)
	dir := t.TempDir()
	for _, sub := range []string{"scripts", "files"} {
		require.NoError(t, os.CopyFS(filepath.Join(dir, sub), os.DirFS(filepath.Join(labtest.Root(), "topology", "testdata", sub))))
	}
	cases := labtest.BadCases(t)
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, "lab.yaml"), []byte(c.Src), 0o644))
			for _, command := range []string{"validate", "plan"} {
				cmd := exec.Command(bin, command)
				cmd.Dir = dir
				out, err := cmd.CombinedOutput()
				var ee *exec.ExitError
				require.ErrorAs(t, err, &ee, "lab %s accepted:\n%s", command, c.Src)
				assert.Equal(t, 2, ee.ExitCode(), "lab %s: %s", command, out)
				assert.Contains(t, string(out), c.Want)
				assert.True(t, strings.HasPrefix(string(out), "lab: lab.yaml"), "%s", out)
				assert.NotContains(t, string(out), "panic")
			}
		})
	}
}

// Usage errors exit 2 too; a missing file names the way to give another.
func TestUsageExitCodes(t *testing.T) {
	bin := labtest.Binary(t)
	dir := t.TempDir()
	run := func(args ...string) (string, int) {
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		}
		require.NoError(t, err)
		return string(out), 0
	}
	out, code := run("validate")
	assert.Equal(t, 2, code)
	assert.Contains(t, out, "lab.yaml: no such file (give another with -f FILE or LAB_FILE)")
	_, code = run("up", "--no-such-flag")
	assert.Equal(t, 2, code)
	_, code = run("no-such-command")
	assert.Equal(t, 2, code)
	_, code = run("status", "extra-arg")
	assert.Equal(t, 2, code)
	out, code = run("version")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "providers: libvirt, lxc")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "other.yaml"), []byte("name: ok\nnodes: [{role: web}]\n"), 0o644))
	out, code = run("-f", "other.yaml", "validate")
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "web1")
}
