// Package todomvc holds the flagship lab; its end-to-end test brings the
// real lab up and checks what a user would: the app, replication, and that
// traffic keeps flowing when backends go away or are added.
package todomvc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/labctl/lab/labtest"
)

// The test lab is this folder's lab with its own name and subnet, so it
// never collides with a `make up` of the real one.
const (
	name   = "todo-e2e"
	subnet = "10.97.10"
)

func copyLab(t *testing.T) map[string]string {
	files := labtest.CopyLab(t)
	files["lab.yaml"] = labFile(t, files["lab.yaml"])
	return files
}

// labFile rewrites the lab's name and addresses.
func labFile(t *testing.T, src string) string {
	out := strings.NewReplacer(
		"name: todomvc", "name: "+name,
		"10.80.0.", subnet+".",
		"domain: todomvc.lab", "domain: "+name+".lab",
	).Replace(src)
	require.Contains(t, out, "name: "+name)
	return out
}

// withCount sets a role's count.
func withCount(t *testing.T, src, role string, n int) string {
	i := strings.Index(src, "role: "+role+"\n")
	require.Positive(t, i, role)
	j := strings.Index(src[i:], "count: ")
	require.Positive(t, j)
	k := i + j + len("count: ")
	end := k + strings.IndexByte(src[k:], '\n')
	return src[:k] + fmt.Sprint(n) + src[end:]
}

var client = &http.Client{Timeout: 5 * time.Second}

func ip(host int) string { return fmt.Sprintf("%s.%d", subnet, host) }

// Node addresses, from the address plan: adm .11, pg .31+, nginx .51+,
// app .71+; the nginx role's floating address is .5.
var (
	adm1   = ip(11)
	nginx1 = ip(51)
	nginx2 = ip(52)
	nginx3 = ip(53)
	vip    = ip(5)
)

type todo struct {
	ID        int    `json:"id"`
	Title     string `json:"title"`
	Completed bool   `json:"completed"`
}

func call(t *testing.T, method, url string, body any) (*http.Response, []byte) {
	t.Helper()
	return callWith(t, client, method, url, body)
}

func callWith(t *testing.T, client *http.Client, method, url string, body any) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	require.NoError(t, err, "%s %s", method, url)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func eventually(t *testing.T, what string, within time.Duration, f func() bool) {
	t.Helper()
	labtest.Eventually(t, within, 250*time.Millisecond, what, f)
}

// eventuallySee is eventually for a value: it reports the last one seen.
func eventuallySee(t *testing.T, what string, within time.Duration, get func() string, ok func(string) bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		v := get()
		if ok(v) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s; last seen:\n%s", within, what, v)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func statusOK(url string) bool {
	resp, err := client.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

func TestTodoMVC(t *testing.T) {
	labtest.Integration(t)
	e2e(t, labtest.New(t, name, copyLab(t)), nil)
}

// e2e is the whole test of the lab l, on this host (cl nil) or on the LXD
// cluster cl (lxd_test.go).
func e2e(t *testing.T, l *labtest.Lab, cl *labtest.LXDCluster) {
	for _, n := range []string{"pg1", "pg2", "pg3"} {
		l.OnFailure(n, "journalctl", "--no-pager", "-o", "short-precise", "-n", "60", "-u", "pg-agent", "-u", "postgresql@15-main")
	}
	l.OnFailure("adm1", "sh", "-c", "serf members; journalctl --no-pager -o short-precise -n 30 -u lab-discovery")
	for _, n := range []string{"nginx1", "nginx2"} {
		l.OnFailure(n, "sh", "-c", "cat /etc/nginx/todo-upstreams.conf; tail -n 20 /var/log/nginx/error.log; journalctl --no-pager -o short-precise -n 20 -u lab-discovery")
	}
	for _, n := range []string{"app1", "app2"} {
		l.OnFailure(n, "journalctl", "--no-pager", "-o", "short-precise", "-n", "40", "-u", "todo", "-u", "lab-discovery")
	}
	_, stderr, code := l.Run("up")
	require.Equal(t, 0, code, "lab up:\n%s", stderr)
	via := "lab-" + name + "-0"
	if cl != nil {
		via = spread(t, l, cl)
	}
	for _, a := range []string{nginx1, nginx2} {
		labtest.RequireRouteVia(t, a, via)
	}

	// Add a todo through nginx1, read it back through nginx2.
	resp, b := call(t, "POST", "http://"+nginx1+"/api/todos", map[string]any{"title": "replicate me"})
	require.Equal(t, 201, resp.StatusCode, string(b))
	var created todo
	require.NoError(t, json.Unmarshal(b, &created))
	resp, b = call(t, "GET", fmt.Sprintf("http://%s/api/todos/%d", nginx2, created.ID), nil)
	require.Equal(t, 200, resp.StatusCode, string(b))
	var got todo
	require.NoError(t, json.Unmarshal(b, &got))
	assert.Equal(t, "replicate me", got.Title)

	// The TodoMVC operations: toggle, edit, clear completed, delete.
	resp, b = call(t, "PATCH", fmt.Sprintf("http://%s/api/todos/%d", nginx2, created.ID), map[string]any{"completed": true, "title": "replicated"})
	require.Equal(t, 200, resp.StatusCode, string(b))
	resp, b = call(t, "POST", "http://"+nginx1+"/api/todos", map[string]any{"title": "second"})
	require.Equal(t, 201, resp.StatusCode, string(b))
	var second todo
	require.NoError(t, json.Unmarshal(b, &second))
	resp, _ = call(t, "DELETE", "http://"+nginx1+"/api/todos", nil) // clear completed
	require.Equal(t, 200, resp.StatusCode)
	resp, b = call(t, "GET", "http://"+nginx2+"/api/todos", nil)
	require.Equal(t, 200, resp.StatusCode)
	var list []todo
	require.NoError(t, json.Unmarshal(b, &list))
	require.Len(t, list, 1)
	assert.Equal(t, "second", list[0].Title)
	resp, b = call(t, "GET", "http://"+nginx1+"/", nil)
	assert.Equal(t, 200, resp.StatusCode)
	assert.Contains(t, string(b), "todos")

	// The row is on every standby within seconds, read-only there.
	for _, pg := range []string{"pg2", "pg3"} {
		eventually(t, "todo row on "+pg, 5*time.Second, func() bool {
			out, c := l.Exec(pg, "runuser", "-u", "postgres", "--", "psql", "-d", "todo", "-qtAc", fmt.Sprintf("select title from todos where id = %d", second.ID))
			return c == 0 && strings.TrimSpace(out) == "second"
		})
	}
	_, stderr, c := l.Run("exec", "pg2", "--", "runuser", "-u", "postgres", "--", "psql", "-d", "todo", "-c", "insert into todos (title) values ('nope')")
	assert.NotEqual(t, 0, c, "a write on the standby succeeded")
	assert.Contains(t, stderr, "read-only transaction")

	// Reads go to a standby that has caught up.
	eventually(t, "a read served from a standby", 15*time.Second, func() bool {
		resp, _ := call(t, "GET", "http://"+nginx1+"/api/todos", nil)
		return resp.Header.Get("X-DB") == "pg2" || resp.Header.Get("X-DB") == "pg3"
	})

	// Stop the app on app1: requests to both nginx nodes keep working, and
	// app1 drops out of every upstream list. (First both apps must be in
	// both lists: discovery adds an app once its readiness says so, and a
	// list that still holds app1 alone has nothing to fall back on.)
	for _, n := range []string{"nginx1", "nginx2"} {
		eventually(t, "both apps in "+n+"'s upstreams", 30*time.Second, func() bool {
			out, c := l.Exec(n, "cat", "/etc/nginx/todo-upstreams.conf")
			return c == 0 && strings.Contains(out, ip(71)+":8000") && strings.Contains(out, ip(72)+":8000")
		})
	}
	_, c = l.Exec("app1", "systemctl", "stop", "todo")
	require.Equal(t, 0, c)
	for i := 0; i < 20; i++ {
		for _, h := range []string{nginx1, nginx2} {
			resp, b := call(t, "GET", "http://"+h+"/api/todos", nil)
			require.Equal(t, 200, resp.StatusCode, "request %d to %s: %s", i, h, b)
			assert.Equal(t, "app2", resp.Header.Get("X-Served-By"))
		}
	}
	// Serf's gossip is lossy: a node that missed app1's tag change learns
	// it from the lab's own 2 s sync, or at worst from Serf's full-state
	// exchange, every 15 s in its "local" profile; the bound allows that.
	app1 := ip(71)
	for _, n := range []string{"nginx1", "nginx2"} {
		eventually(t, "app1 leaves "+n+"'s upstreams", 25*time.Second, func() bool {
			out, c := l.Exec(n, "cat", "/etc/nginx/todo-upstreams.conf")
			return c == 0 && !strings.Contains(out, app1+":") && strings.Contains(out, ip(72)+":")
		})
	}
	eventuallySee(t, "status page shows app1 down", 25*time.Second,
		func() string { return admGet(t, l, "/members.json") },
		func(s string) bool { return strings.Contains(s, `"health": "app down"`) })
	_, c = l.Exec("app1", "systemctl", "start", "todo")
	require.Equal(t, 0, c)
	eventually(t, "app1 back in nginx2's upstreams", 15*time.Second, func() bool {
		out, _ := l.Exec("nginx2", "cat", "/etc/nginx/todo-upstreams.conf")
		return strings.Contains(out, app1+":")
	})

	fromOutside(t, l)
	dnsAndFloating(t, l)
	ipv6(t, l)
	operations(t, l)
	failover(t, l)
	scaling(t, l)
	faults(t, l, cl != nil)
	snapshots(t, l)
}

// admGet fetches a page of adm1's status site from inside adm1 (the host is
// outside: its firewall lets only SSH in).
func admGet(t *testing.T, l *labtest.Lab, path string) string {
	t.Helper()
	out, _ := l.Exec("adm1", "python3", "-c", "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen('http://localhost"+path+"', timeout=5).read().decode())")
	return out
}

// snapshots saves the whole lab, adds todos, restores: the todos are gone
// from the primary and the standby, replication streams, discovery sees
// every node, and every health check passes.
func snapshots(t *testing.T, l *labtest.Lab) {
	psql := func(node, sql string) string {
		out, c := l.Exec(node, "runuser", "-u", "postgres", "--", "psql", "-d", "todo", "-qtAc", sql)
		require.Equal(t, 0, c, "%s: %s", node, sql)
		return strings.TrimSpace(out)
	}
	primary := primaryNode(t, l)
	before := psql(primary, "select count(*) from todos")
	_, stderr, code := l.Run("snapshot", "save", "e2e")
	require.Equal(t, 0, code, stderr)
	for i := 0; i < 3; i++ {
		resp, b := call(t, "POST", "http://"+nginx1+"/api/todos", map[string]any{"title": fmt.Sprintf("after the snapshot %d", i)})
		require.Equal(t, 201, resp.StatusCode, string(b))
	}
	standby := "pg1"
	if primary == "pg1" {
		standby = "pg2"
	}
	eventually(t, "the new rows on "+standby, 10*time.Second, func() bool {
		return psql(standby, "select count(*) from todos where title like 'after the snapshot%'") == "3"
	})
	l.MustRun("snapshot", "restore", "e2e")
	assert.Equal(t, before, psql(primary, "select count(*) from todos"), "the primary is back as saved")
	eventually(t, standby+" streams again, as saved", 30*time.Second, func() bool {
		out, c := l.Exec(standby, "runuser", "-u", "postgres", "--", "psql", "-qtAc", "select status from pg_stat_wal_receiver")
		return c == 0 && strings.TrimSpace(out) == "streaming"
	})
	assert.Equal(t, "0", psql(standby, "select count(*) from todos where title like 'after the snapshot%'"))
	nodes := l.Status()
	eventually(t, "discovery sees every node alive", 30*time.Second, func() bool {
		var members []struct{ Name, Status string }
		if json.Unmarshal([]byte(admGet(t, l, "/members.json")), &members) != nil {
			return false
		}
		alive := 0
		for _, m := range members {
			if _, ok := nodes[m.Name]; ok && m.Status == "alive" {
				alive++
			}
		}
		return alive == len(nodes)
	})
	// lab up runs every health check again: all pass.
	_, stderr, code = l.Run("up")
	require.Equal(t, 0, code, "health checks after the restore:\n%s", stderr)

	// The lab file's own tests pass on the restored lab, and lab test
	// leaves a lab that was up before it up.
	out, stderr, code := l.Run("test")
	require.Equal(t, 0, code, out+stderr)
	assert.Contains(t, out, "lab test: 4 tests passed")
	assert.Contains(t, out, "was up before this run: left up")
	assert.Equal(t, "running", l.Status()[primary].State)

	// The CI recipe (docs/ci.md): export, then lab test --from the file in
	// a fresh folder: every test passes, JUnit says so, nothing is left.
	file := filepath.Join(t.TempDir(), "todomvc.snap")
	l.MustRun("snapshot", "export", "e2e", file)
	l.MustRun("destroy", "--snapshots")
	files := copyLab(t)
	files["lab.yaml"] = mustRead(t, filepath.Join(l.Dir, "lab.yaml"))
	m := labtest.New(t, name, files)
	m.Env = l.Env // the same cluster, on LXD
	junit := filepath.Join(t.TempDir(), "report.xml")
	out, stderr, code = m.Run("test", "--from", file, "--junit", junit)
	require.Equal(t, 0, code, out+stderr)
	report := mustRead(t, junit)
	assert.Contains(t, report, `<testsuite name="lab `+name+`" tests="4" failures="0" errors="0"`)
	assert.Contains(t, report, `<testcase name="every standby has caught up with the primary"`)
	labtest.AssertNoLeaks(t, name, m.Dir)
}

// fault puts a fault in force and returns its id.
func fault(t *testing.T, l *labtest.Lab, args ...string) string {
	id := strings.TrimSpace(l.MustRun(append([]string{"fault"}, args...)...))
	require.Regexp(t, `^f[0-9]+$`, id)
	return id
}

// faults breaks the lab as its users would test it.
func faults(t *testing.T, l *labtest.Lab, onLXD bool) {
	psql := func(node, sql string) (string, int) {
		out, c := l.Exec(node, "runuser", "-u", "postgres", "--", "psql", "-d", "todo", "-qtAc", sql)
		return strings.TrimSpace(out), c
	}
	// A split between the primary and a standby: the standby cannot reach
	// its primary (Serf still can, through the others: no failover); rows
	// written meanwhile reach it once the split heals.
	primary := primaryNode(t, l)
	standby := "pg1"
	if primary == "pg1" {
		standby = "pg2"
	}
	id := fault(t, l, "partition", primary, standby)
	_, c := l.Exec(standby, "pg_isready", "-h", primary, "-t", "2")
	assert.NotEqual(t, 0, c, "%s still reaches %s through the partition", standby, primary)
	var split []int
	for i := 0; i < 3; i++ {
		resp, b := call(t, "POST", "http://"+nginx1+"/api/todos", map[string]any{"title": fmt.Sprintf("during the split %d", i)})
		require.Equal(t, 201, resp.StatusCode, string(b))
		var td todo
		require.NoError(t, json.Unmarshal(b, &td))
		split = append(split, td.ID)
	}
	l.MustRun("fault", "heal", id)
	assert.Equal(t, primary, primaryNode(t, l), "a split is no failover")
	eventually(t, "the rows written during the split reach "+standby, 30*time.Second, func() bool {
		out, c := psql(standby, fmt.Sprintf("select count(*) from todos where id in (%d, %d, %d)", split[0], split[1], split[2]))
		return c == 0 && out == "3"
	})

	// nginx2's node dies hard: every request through nginx1 still succeeds.
	id = fault(t, l, "kill", "nginx2")
	assert.Equal(t, "stopped", l.Status()["nginx2"].State)
	assert.False(t, statusOK("http://"+nginx2+"/api/ready"), "nginx2 still answers after its kill")
	for i := 0; i < 20; i++ {
		resp, b := call(t, "GET", "http://"+nginx1+"/api/todos", nil)
		require.Equal(t, 200, resp.StatusCode, "request %d after killing nginx2: %s", i, b)
	}
	l.MustRun("fault", "heal", id)
	eventually(t, "nginx2 serves again after its reboot", 30*time.Second, func() bool { return statusOK("http://" + nginx2 + "/api/ready") })

	if onLXD {
		_, stderr, code := l.Run("fault", "delay", primary, "300ms")
		assert.Equal(t, 2, code)
		assert.Contains(t, stderr, "does not cross this host", "lab delays on this host's node ports")
		return
	}
	// A slow primary: writes take longer, and still succeed. Every packet
	// from the primary waits 300 ms, and an app that opens a connection
	// to it (TCP, TLS, authentication) waits for each, so the claim is
	// success, not speed: the client waits up to 30 s, not its usual 5.
	id = fault(t, l, "delay", primary, "300ms")
	start := time.Now()
	resp, b := callWith(t, &http.Client{Timeout: 30 * time.Second}, "POST", "http://"+nginx1+"/api/todos", map[string]any{"title": "slow but sure"})
	took := time.Since(start)
	t.Logf("a write to the slow primary took %.1fs", took.Seconds())
	require.Equal(t, 201, resp.StatusCode, string(b))
	assert.GreaterOrEqual(t, took, 300*time.Millisecond, "the write did not wait for the slow primary")
	l.MustRun("fault", "heal", id)
}

func mustRead(t *testing.T, rel string) string {
	b, err := os.ReadFile(rel)
	require.NoError(t, err)
	return string(b)
}

// BenchmarkUp reports the full lab's up from a warm image cache to every
// health check green, and a scale-out of nginx from 2 to 4 nodes.
func BenchmarkUp(b *testing.B) {
	labtest.Integration(b)
	t := &testing.T{}
	files := copyLab(t)
	l := labtest.New(b, name, files)
	l.MustRun("image", "build")
	var ups, scales, destroys []time.Duration
	for i := 0; i < b.N; i++ {
		l.Write("lab.yaml", files["lab.yaml"])
		start := time.Now()
		l.MustRun("up")
		ups = append(ups, time.Since(start))
		l.Write("lab.yaml", withCount(t, files["lab.yaml"], "nginx", 4))
		start = time.Now()
		l.MustRun("up")
		scales = append(scales, time.Since(start))
		start = time.Now()
		l.MustRun("destroy")
		destroys = append(destroys, time.Since(start))
	}
	b.ReportMetric(med(ups), "up-s")
	b.ReportMetric(med(scales), "scale2to4-s")
	b.ReportMetric(med(destroys), "destroy-s")
	b.Logf("todomvc, warm cache: up to all health checks green %.1fs (goal <30s), nginx 2→4 %.1fs, destroy %.2fs", med(ups), med(scales), med(destroys))
}

// med is the median of durations, in seconds.
func med(d []time.Duration) float64 {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2].Seconds()
}

// BenchmarkSnapshot reports, for the whole todomvc lab: a save (and how long
// its nodes were frozen), a restore, and a fresh lab up --from an exported
// file to every health check green, beside a plain up of the same run.
func BenchmarkSnapshot(b *testing.B) {
	labtest.Integration(b)
	t := &testing.T{}
	files := copyLab(t)
	l := labtest.New(b, name, files)
	l.MustRun("image", "build")
	file := filepath.Join(b.TempDir(), "todomvc.snap")
	var ups, saves, restores, froms, tests []time.Duration
	var frozen []float64
	for i := 0; i < b.N; i++ {
		start := time.Now()
		l.MustRun("up")
		ups = append(ups, time.Since(start))
		start = time.Now()
		l.MustRun("snapshot", "save", "bench")
		saves = append(saves, time.Since(start))
		var list struct {
			Snapshots []struct {
				Frozen float64 `json:"frozen_seconds"`
			} `json:"snapshots"`
		}
		if err := json.Unmarshal([]byte(l.MustRun("snapshot", "list", "--json")), &list); err == nil && len(list.Snapshots) > 0 {
			frozen = append(frozen, list.Snapshots[0].Frozen)
		}
		start = time.Now()
		l.MustRun("snapshot", "restore", "bench")
		restores = append(restores, time.Since(start))
		l.MustRun("snapshot", "export", "bench", file)
		l.MustRun("destroy", "--snapshots")
		start = time.Now()
		l.MustRun("up", "--from", file)
		froms = append(froms, time.Since(start))
		l.MustRun("destroy", "--snapshots")
		start = time.Now()
		l.MustRun("test", "--from", file) // up, the file's tests, destroy
		tests = append(tests, time.Since(start))
	}
	sort.Float64s(frozen)
	b.ReportMetric(med(ups), "up-s")
	b.ReportMetric(med(saves), "save-s")
	b.ReportMetric(frozen[len(frozen)/2], "frozen-s")
	b.ReportMetric(med(restores), "restore-s")
	b.ReportMetric(med(froms), "up-from-s")
	b.ReportMetric(med(tests), "test-from-s")
	b.Logf("todomvc: up %.1fs, save %.2fs (frozen %.2fs), restore %.2fs, up --from file %.1fs (%.2fx of up), lab test --from file %.1fs", med(ups), med(saves), frozen[len(frozen)/2], med(restores), med(froms), med(froms)/med(ups), med(tests))
}
