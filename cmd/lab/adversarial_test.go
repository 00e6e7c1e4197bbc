package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/labctl/lab/labtest"
)

// runIn runs lab in dir with a deadline: output and exit code (-1: it hung).
func runIn(t *testing.T, dir string, env []string, args ...string) (string, int) {
	t.Helper()
	bin := labtest.Binary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "CI=true"), env...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return string(out), -1
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	}
	require.NoError(t, err)
	return string(out), 0
}

// A damaged state never makes a read-only command panic: each says what is
// wrong and how to get out (destroy --name), with exit 1.
func TestDamagedStateIsExplained(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "lab.yaml"), []byte("name: dmg\nnodes: [{role: web}]\n"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, ".lab"), 0o755))
	for name, body := range map[string]string{
		"null node":      `{"version":1,"lab":"dmg","nodes":{"web1":null}}`,
		"null network":   `{"version":1,"lab":"dmg","networks":{"lan":null}}`,
		"ipv6 subnet":    `{"version":1,"lab":"dmg","networks":{"lan":{"name":"lan","bridge":"lab-dmg-0","subnet":"fd00::/64"}}}`,
		"public subnet":  `{"version":1,"lab":"dmg","networks":{"lan":{"name":"lan","bridge":"lab-dmg-0","subnet":"8.8.8.0/24"}}}`,
		"whole internet": `{"version":1,"lab":"dmg","networks":{"lan":{"name":"lan","bridge":"lab-dmg-0","subnet":"0.0.0.0/0"}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, ".lab", "state.json"), []byte(body), 0o644))
			for _, args := range [][]string{{"status"}, {"plan"}, {"inventory"}, {"ssh-config"}, {"exec", "web1", "--", "true"}} {
				out, code := runIn(t, dir, nil, args...)
				assert.Equal(t, 1, code, "%v: %s", args, out)
				assert.NotContains(t, out, "panic")
				assert.NotContains(t, out, "goroutine")
				assert.Contains(t, out, "state", "%v: %s", args, out)
			}
		})
	}
}

// Special files and bad settings are refused at once with exit 2.
func TestSpecialFilesAndSettings(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "fifo.yaml"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "lab.yaml"), []byte("name: sp\nnodes: [{role: web}]\n"), 0o644))
	for _, c := range []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"-f", "/dev/zero", "validate"}, nil, "not a regular file (a device)"},
		{[]string{"-f", "fifo.yaml", "validate"}, nil, "not a regular file (a FIFO)"},
		{[]string{"-f", ".", "plan"}, nil, "not a regular file (a folder)"},
		{[]string{"completion", "tcsh"}, nil, `no shell "tcsh"`},
		{[]string{"--config", "/missing.yaml", "validate"}, nil, "--config /missing.yaml: not a readable file"},
		{[]string{"validate"}, []string{"LAB_WORKERS=abc"}, `workers (LAB_WORKERS) = "abc"`},
		{[]string{"validate"}, []string{"LAB_PROVIDER=nope"}, `provider (LAB_PROVIDER) = "nope"`},
		{[]string{"validate"}, []string{"LAB_SHARED_CACHE=var/cache/lab"}, `shared_cache (LAB_SHARED_CACHE) = "var/cache/lab": want an absolute path, or none`},
		{[]string{"exec", "nope1", "--", "true"}, nil, `no node "nope1" in lab sp`},
		{[]string{"destroy", "--name", "Bad_Name"}, nil, "not a lab name"},
	} {
		out, code := runIn(t, dir, c.env, c.args...)
		assert.Equal(t, 2, code, "%v: %s", c.args, out)
		assert.Contains(t, out, c.want, "%v", c.args)
	}
	// A FIFO as the state file: refused, not waited on.
	require.NoError(t, os.MkdirAll(filepath.Join(dir, ".lab"), 0o755))
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, ".lab", "state.json"), 0o644))
	out, code := runIn(t, dir, nil, "status")
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, "not a regular file")
}

// validate --json gives the errors as JSON too.
func TestValidateJSONErrors(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "lab.yaml"), []byte("name: x\nnodes:\n  - {role: web, cont: 2}\n"), 0o644))
	bin := labtest.Binary(t)
	cmd := exec.Command(bin, "validate", "--json")
	cmd.Dir = dir
	out, err := cmd.Output()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 2, ee.ExitCode())
	var doc struct {
		Valid  bool `json:"valid"`
		Errors []struct {
			File, Path, Message string
			Line                int
		} `json:"errors"`
	}
	require.NoError(t, json.Unmarshal(out, &doc), string(out))
	assert.False(t, doc.Valid)
	require.Len(t, doc.Errors, 1)
	assert.Equal(t, "lab.yaml", doc.Errors[0].File)
	assert.Equal(t, 3, doc.Errors[0].Line)
	assert.Equal(t, "nodes[0].cont", doc.Errors[0].Path)
	assert.Contains(t, doc.Errors[0].Message, `unknown field "cont"`)
}

// plan refuses what up would: a host port another program holds.
func TestPlanRefusesWhatUpWould(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "lab.yaml"), []byte(fmt.Sprintf("name: pp\nnodes: [{role: web, ports: [\"%d:80\"]}]\n", port)), 0o644))
	out, code := runIn(t, dir, nil, "plan")
	assert.Equal(t, 2, code, out)
	assert.Contains(t, out, fmt.Sprintf("lab.yaml:2: nodes[0].ports[0]: host port 127.0.0.1:%d is taken by another program", port))
}
