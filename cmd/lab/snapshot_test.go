package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/labctl/lab/labtest"
)

const snapLab = `
name: it-snap
networks: [{name: lan, subnet: 10.97.19.0/24}]
defaults: {memory: 256M}
nodes:
  - role: db
    count: 2
    packages: [postgresql]
    provision:
      - inline: echo provisioned > /root/p
      - inline: date +%s%N >> /root/always
        run: always
  - role: app
    packages: [postgresql]
`

func cat(t *testing.T, l *labtest.Lab, node, file string) string {
	out, _ := l.Exec(node, "sh", "-c", "cat "+file+" 2>/dev/null || echo absent")
	return strings.TrimSpace(out)
}

func write(t *testing.T, l *labtest.Lab, node, file, content string) {
	_, c := l.Exec(node, "sh", "-c", "echo "+content+" > "+file+" && sync")
	require.Equal(t, 0, c)
}

// Save and restore the whole lab and one node, clone a node into another
// role, and start a fresh lab from an exported file with only run: always
// steps running.
func TestIntegrationSnapshots(t *testing.T) {
	labtest.Integration(t)
	l := labtest.New(t, "it-snap", map[string]string{"lab.yaml": snapLab})
	l.MustRun("up")
	for _, n := range []string{"db1", "db2"} {
		write(t, l, n, "/root/x", "one")
	}
	_, stderr, code := l.Run("snapshot", "save", "s1")
	require.Equal(t, 0, code, stderr)
	assert.Regexp(t, `saved s1: app1 db1 db2, [0-9]+ MB, nodes frozen [0-9.]+s`, stderr)

	for _, n := range []string{"db1", "db2"} {
		write(t, l, n, "/root/x", "two")
	}
	write(t, l, "app1", "/root/new", "yes")
	l.MustRun("snapshot", "restore", "s1")
	for _, n := range []string{"db1", "db2"} {
		assert.Equal(t, "one", cat(t, l, n, "/root/x"), n)
	}
	assert.Equal(t, "absent", cat(t, l, "app1", "/root/new"))
	for n, s := range l.Status() {
		assert.Equal(t, "running", s.State, n)
		assert.Equal(t, "done", s.Provisioned, n)
	}

	// One node: db2 is untouched by db1's restore.
	l.MustRun("snapshot", "save", "n1", "db1")
	write(t, l, "db1", "/root/x", "three")
	write(t, l, "db2", "/root/x", "three")
	l.MustRun("snapshot", "restore", "n1")
	assert.Equal(t, "one", cat(t, l, "db1", "/root/x"))
	assert.Equal(t, "three", cat(t, l, "db2", "/root/x"))

	var list struct {
		Snapshots []struct {
			Name  string   `json:"name"`
			Whole bool     `json:"whole"`
			Nodes []string `json:"nodes"`
		} `json:"snapshots"`
	}
	require.NoError(t, json.Unmarshal([]byte(l.MustRun("snapshot", "list", "--json")), &list))
	require.Len(t, list.Snapshots, 2)
	assert.True(t, list.Snapshots[0].Whole)
	assert.Equal(t, []string{"db1"}, list.Snapshots[1].Nodes)

	// Bad requests.
	for _, args := range [][]string{
		{"snapshot", "restore", "nope"}, {"snapshot", "save", "a/b"}, {"snapshot", "save", "s1"},
		{"snapshot", "restore", "s1", "nope9"}, {"snapshot", "save", "x", "nope9"}, {"clone", "db1", "nope9"}, {"clone", "db1", "db1"},
	} {
		_, stderr, code := l.Run(args...)
		assert.Equal(t, 2, code, "%v: %s", args, stderr)
	}

	// A save killed midway leaves no half snapshot and no frozen node.
	cmd := exec.Command(l.Bin, "snapshot", "save", "killed")
	cmd.Dir, cmd.Env = l.Dir, append(os.Environ(), "CI=true")
	require.NoError(t, cmd.Start())
	time.Sleep(30 * time.Millisecond)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	l.MustRun("up")
	for n, s := range l.Status() {
		assert.Equal(t, "running", s.State, n)
	}
	_, c := l.Exec("db1", "true")
	assert.Equal(t, 0, c, "db1 is not left frozen")
	// The same, deterministic: a node left frozen behind lab's back is
	// thawed by the next up.
	require.NoError(t, exec.Command("lxc-freeze", "-n", "it-snap_db2", "-P", "/var/lib/lxc").Run())
	assert.Equal(t, "paused", l.Status()["db2"].State)
	l.MustRun("up")
	assert.Equal(t, "running", l.Status()["db2"].State)
	out := l.MustRun("snapshot", "list")
	if strings.Contains(out, "killed") {
		l.MustRun("snapshot", "rm", "killed") // the save had finished: it is whole
	}

	// A restore killed once the first disk is back, after its nodes were
	// stopped: restore again converges, and so does up.
	killRestore(t, l, "s1")
	l.MustRun("snapshot", "restore", "s1")
	for _, n := range []string{"db1", "db2"} {
		assert.Equal(t, "one", cat(t, l, n, "/root/x"), n)
	}
	// Up finishes the restore: every node has the snapshot's disk, whichever
	// one the kill caught midway (none is made afresh, none keeps its
	// newer disk).
	for _, n := range []string{"db1", "db2"} {
		write(t, l, n, "/root/x", "four")
	}
	killRestore(t, l, "s1")
	l.MustRun("up")
	for n, s := range l.Status() {
		assert.Equal(t, "running", s.State, n)
		assert.Equal(t, "done", s.Provisioned, n)
	}
	for _, n := range []string{"db1", "db2"} {
		assert.Equal(t, "one", cat(t, l, n, "/root/x"), n)
	}

	// Clone db1, a PostgreSQL node with rows, into app1: the rows are
	// there, the name and address are app1's.
	_, c = l.Exec("db1", "runuser", "-u", "postgres", "--", "psql", "-qc", "create table t (x int); insert into t values (42)")
	require.Equal(t, 0, c)
	l.MustRun("clone", "db1", "app1")
	assert.Equal(t, "one", cat(t, l, "app1", "/root/x"))
	eventually(t, "app1's PostgreSQL answers", 20*time.Second, func() bool {
		out, c := l.Exec("app1", "runuser", "-u", "postgres", "--", "psql", "-qtAc", "select x from t")
		return c == 0 && strings.TrimSpace(out) == "42"
	})
	assert.Equal(t, "app1", cat(t, l, "app1", "/etc/hostname"))
	o, _ := l.Exec("app1", "ip", "-4", "-o", "addr", "show", "eth0")
	assert.Contains(t, o, "10.97.19.31/24")

	// Export, destroy, and a fresh lab from the file in another folder.
	file := filepath.Join(t.TempDir(), "s1.snap")
	l.MustRun("snapshot", "export", "s1", file)
	l.MustRun("destroy", "--snapshots")
	labtest.AssertNoLeaks(t, "it-snap", l.Dir)

	m := labtest.New(t, "it-snap", map[string]string{"lab.yaml": snapLab})
	up := exec.Command(m.Bin, "up", "--from", file, "--json")
	up.Dir, up.Env = m.Dir, append(os.Environ(), "CI=true")
	stdout, err := up.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, up.Start())
	var steps []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		var ev struct{ Node, Phase, Message string }
		if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Phase == "provision" && strings.HasPrefix(ev.Message, "step ") {
			steps = append(steps, ev.Node+": "+ev.Message)
		}
	}
	require.NoError(t, up.Wait())
	assert.ElementsMatch(t, []string{"db1: step 2 (inline: date +%s%N >> /root/always)", "db2: step 2 (inline: date +%s%N >> /root/always)"}, steps,
		"only the run: always steps run")
	assert.Equal(t, "one", cat(t, m, "db1", "/root/x"))
	assert.Equal(t, "provisioned", cat(t, m, "db2", "/root/p"))
	for n, s := range m.Status() {
		assert.Equal(t, "running", s.State, n)
		assert.Equal(t, "done", s.Provisioned, n)
	}
	// A lab file that differs is refused, naming what differs.
	m.Write("lab.yaml", strings.Replace(snapLab, "echo provisioned", "echo changed", 1))
	m.MustRun("destroy")
	_, stderr, code = m.Run("up", "--from", file)
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "node db1: step 1 (inline: echo changed > /root/p) changed")
	m.MustRun("destroy", "--snapshots")
}

// killRestore starts a restore of snapshot name and kills it with SIGKILL
// as soon as it says that a node's disk is back.
func killRestore(t *testing.T, l *labtest.Lab, name string) {
	t.Helper()
	seen, _, _ := signalWhen(t, l, true, "disk restored", nil, syscall.SIGKILL, "snapshot", "restore", name)
	require.True(t, seen, "the restore said no node's disk was back")
}

// eventually polls f until it holds or the time is up.
func eventually(t *testing.T, what string, within time.Duration, f func() bool) {
	t.Helper()
	labtest.Eventually(t, within, 250*time.Millisecond, what, f)
}
