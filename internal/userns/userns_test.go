package userns

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The test binary is lab here: run again, it does the operation asked.
func TestMain(m *testing.M) {
	Register("test-owner", func(args []string, stdin io.Reader) error {
		b, _ := io.ReadAll(stdin)
		if string(b) != "in" {
			return errors.New("stdin not passed")
		}
		// Made by root of the namespace: the range's first id on the host.
		return os.WriteFile(args[0], []byte(strings.Join(args[1:], " ")), 0o644)
	})
	Main()
	os.Exit(m.Run())
}

func testMap(t *testing.T) *Map {
	if os.Geteuid() != 0 {
		t.Skip("maps ids as root does")
	}
	if _, err := exec.LookPath("lxc-usernsexec"); err != nil {
		t.Skip("no lxc-usernsexec")
	}
	return &Map{UID: 400000, GID: 400000, Count: 65536, User: 0, Group: 0}
}

func TestRunAsRootOfTheNamespace(t *testing.T) {
	m := testMap(t)
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o755))
	f := filepath.Join(dir, "made")
	require.NoError(t, m.Run(context.Background(), "test-owner", strings.NewReader("in"), f, "a", "b"))
	b, err := os.ReadFile(f)
	require.NoError(t, err)
	assert.Equal(t, "a b", string(b))
	fi, err := os.Stat(f)
	require.NoError(t, err)
	assert.EqualValues(t, 400000, fi.Sys().(*syscall.Stat_t).Uid, "root of the namespace is the range's first id")

	err = m.Run(context.Background(), "no-such-op", nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `no operation "no-such-op"`)
}

func TestRemoveAllWhatTheNamespaceOwns(t *testing.T) {
	m := testMap(t)
	dir := filepath.Join(t.TempDir(), "tree")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "a/b"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a/b/f"), nil, 0o600))
	for _, p := range []string{dir, dir + "/a", dir + "/a/b", dir + "/a/b/f"} {
		require.NoError(t, os.Lchown(p, 400000+1000, 400000+1000)) // a user of the node
	}
	require.NoError(t, os.Chmod(filepath.Dir(dir), 0o755))
	require.NoError(t, m.RemoveAll(context.Background(), dir))
	_, err := os.Stat(dir)
	assert.True(t, os.IsNotExist(err))
}
