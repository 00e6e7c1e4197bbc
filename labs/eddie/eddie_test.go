// Package eddie holds the Eddie lab; its end-to-end test proves the fixes
// its team wrote down, on the real lab: an update is flushed from every
// api node's cache (only that id) through RabbitMQ, the original bug
// returns with the flush off, an outage of the bus heals, sign-up mail
// arrives, one notice reaches everybody, and Barman keeps three backups,
// the newest of which restores into a fresh node.
package eddie

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/labctl/lab/labtest"
)

const (
	name   = "eddie-e2e"
	subnet = "10.97.28"
	alice  = "00000000-0000-4000-8000-000000000001"
	bob    = "00000000-0000-4000-8000-000000000002"
	bike   = "00000000-0000-4000-8000-000000000101"
	lamp   = "00000000-0000-4000-8000-000000000102"
	kayak  = "00000000-0000-4000-8000-000000000104"
)

// api is the address of api node n (the api role is the lab's fourth).
func api(n int) string { return fmt.Sprintf("%s.%d", subnet, 70+n) }

// client drops an idle connection after 1 s, before gunicorn does (its
// keep-alive is 2 s): a POST sent on a connection the server is closing at
// that moment is reset, and Go replays only idempotent requests (seen once,
// a transfer right after a 3.4 s lab up).
var client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{IdleConnTimeout: time.Second}}

func copyLab(t *testing.T) map[string]string {
	return labtest.CopyLab(t, "name: eddie", "name: "+name, "10.82.0.0/24", subnet+".0/24")
}

// gql runs a GraphQL request on an api node and returns its data.
func gql(t *testing.T, ip, query string, vars map[string]any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	resp, err := client.Post("http://"+ip+":8000/graphql", "application/json", bytes.NewReader(b))
	require.NoError(t, err, ip)
	defer resp.Body.Close()
	var body struct {
		Data   map[string]any `json:"data"`
		Errors []any          `json:"errors"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	require.Empty(t, body.Errors, "%s: %s", ip, query)
	return body.Data
}

func owner(t *testing.T, ip, item string) string {
	t.Helper()
	d := gql(t, ip, `query($id: ID!) { item(id: $id) { owner { name } } }`, map[string]any{"id": item})
	return d["item"].(map[string]any)["owner"].(map[string]any)["name"].(string)
}

func hits(t *testing.T, ip, item string) int {
	t.Helper()
	d := gql(t, ip, `query($id: ID!) { cache { itemHits(id: $id) } }`, map[string]any{"id": item})
	return int(d["cache"].(map[string]any)["itemHits"].(float64))
}

func transfer(t *testing.T, ip, item, to string) {
	t.Helper()
	gql(t, ip, `mutation($id: ID!, $to: ID!) { transferItem(id: $id, to: $to) { id } }`, map[string]any{"id": item, "to": to})
}

// within polls f every 50 ms until it holds, for at most d.
func within(t *testing.T, d time.Duration, what string, f func() bool) time.Duration {
	t.Helper()
	return labtest.Eventually(t, d, 50*time.Millisecond, what, f)
}

func TestEddie(t *testing.T) {
	labtest.Integration(t)
	l := labtest.New(t, name, copyLab(t))
	_, stderr, code := l.Run("up")
	require.Equal(t, 0, code, "lab up:\n%s", stderr)
	labtest.RequireRouteVia(t, api(1), "lab-"+name+"-0")
	out, stderr, code := l.Run("test")
	require.Equal(t, 0, code, "lab test:\n%s\n%s", out, stderr)
	assert.Contains(t, out+stderr, "3 tests passed")

	flush(t, l)
	outage(t, l)
	mail(t, l)
	notice(t)
	scale(t, l)
	backups(t, l)

	l.MustRun("destroy")
	labtest.AssertNoLeaks(t, name, l.Dir)
}

// flush: a transfer on api1 is seen by api2 and api3 within 1 s, and an
// unrelated cached item stays cached; with the flush off, api2 keeps the
// old owner while search shows the new one: the original bug.
func flush(t *testing.T, l *labtest.Lab) {
	for n := 1; n <= 3; n++ {
		require.Equal(t, "Alice", owner(t, api(n), bike))
		require.Equal(t, "Alice", owner(t, api(n), lamp))
	}
	lampHits := []int{hits(t, api(2), lamp), hits(t, api(3), lamp)}
	transfer(t, api(1), bike, bob)
	took := within(t, time.Second, "api2 and api3 see Bob own the bicycle", func() bool {
		return owner(t, api(2), bike) == "Bob" && owner(t, api(3), bike) == "Bob"
	})
	t.Logf("a transfer on api1 reached api2 and api3 in %s", took.Round(time.Millisecond))
	assert.Equal(t, "Bob", owner(t, api(1), bike))
	for i, n := range []int{2, 3} {
		owner(t, api(n), lamp)
		assert.Equal(t, lampHits[i]+1, hits(t, api(n), lamp), "api%d: the lamp's entry was flushed too", n)
	}

	out := l.MustRun("exec", "--role", "api", "--", "eddie-flush", "off")
	assert.Equal(t, 3, strings.Count(out, "off"), out)
	require.Equal(t, "Bob", owner(t, api(2), bike)) // cached
	transfer(t, api(1), bike, alice)
	time.Sleep(1500 * time.Millisecond)
	assert.Equal(t, "Bob", owner(t, api(2), bike), "with the flush off, api2 should serve the stale owner")
	d := gql(t, api(2), `{ items(search: "Bicycle") { owner { name } } }`, nil)
	assert.Equal(t, "Alice", d["items"].([]any)[0].(map[string]any)["owner"].(map[string]any)["name"], "search reads the database")
	l.MustRun("exec", "--role", "api", "--", "eddie-flush", "on")
	transfer(t, api(1), bike, alice) // flushed everywhere again
	within(t, time.Second, "api2 sees Alice again", func() bool { return owner(t, api(2), bike) == "Alice" })
}

// outage: with RabbitMQ stopped the api still answers and updates; when it
// is back, every node has cleared what it may have missed.
func outage(t *testing.T, l *labtest.Lab) {
	require.Equal(t, "Alice", owner(t, api(3), bike))
	l.MustRun("exec", "mq1", "--", "systemctl", "stop", "rabbitmq-server")
	transfer(t, api(1), bike, bob)
	assert.Equal(t, "Bob", owner(t, api(1), bike), "the updating node is fresh even without the bus")
	assert.Equal(t, "Alice", owner(t, api(3), bike), "api3 could not have heard of the transfer")
	l.MustRun("exec", "mq1", "--", "systemctl", "start", "rabbitmq-server")
	took := within(t, 60*time.Second, "api3 sees Bob once the bus is back", func() bool { return owner(t, api(3), bike) == "Bob" })
	t.Logf("after RabbitMQ came back, api3 was fresh in %s", took.Round(100*time.Millisecond))
	d := gql(t, api(3), `{ cache { clears busConnected } }`, nil)
	assert.Equal(t, true, d["cache"].(map[string]any)["busConnected"])
	assert.GreaterOrEqual(t, d["cache"].(map[string]any)["clears"].(float64), 1.0)
	// Flushes resume.
	transfer(t, api(1), bike, alice)
	within(t, time.Second, "api3 sees Alice", func() bool { return owner(t, api(3), bike) == "Alice" })
}

// mail: a sign-up's welcome mail is in the Maildir within 5 s.
func mail(t *testing.T, l *labtest.Lab) {
	d := gql(t, api(2), `mutation { signUp(name: "Carol", email: "carol@eddie.lab") { id } }`, nil)
	id := d["signUp"].(map[string]any)["id"].(string)
	var msg string
	within(t, 5*time.Second, "Carol's mail in the Maildir", func() bool {
		msg, _ = l.Exec("mail1", "sh", "-c", "grep -l -r -s '^To: carol@eddie.lab' /var/mail/vhosts/eddie.lab/all/new | xargs -r cat")
		return msg != ""
	})
	for _, want := range []string{"Subject: Welcome to Eddie, Carol", "To: carol@eddie.lab", "Hello Carol,", "your account (carol@eddie.lab) is ready", "Your user id is " + id, "Signed up through api2"} {
		assert.Contains(t, msg, want)
	}
	assert.NotContains(t, msg, "$")
}

// notice: set once, the same for everybody.
func notice(t *testing.T) {
	gql(t, api(3), `mutation { setNotice(text: "Planned maintenance on Sunday") { text } }`, nil)
	for n := 1; n <= 3; n++ {
		d := gql(t, api(n), `{ notice { text } }`, nil)
		assert.Equal(t, "Planned maintenance on Sunday", d["notice"].(map[string]any)["text"], "api%d", n)
	}
}

// scale: a fourth api node joins the fan-out with no other change.
func scale(t *testing.T, l *labtest.Lab) {
	l.Write("lab.yaml", labtest.Edit(t, readLab(t, l), "    count: 3\n", "    count: 4\n"))
	l.MustRun("up")
	require.Equal(t, "Bob", owner(t, api(4), kayak))
	transfer(t, api(1), kayak, alice)
	within(t, time.Second, "api4 sees the transfer", func() bool { return owner(t, api(4), kayak) == "Alice" })
}

func readLab(t *testing.T, l *labtest.Lab) string {
	b, err := os.ReadFile(filepath.Join(l.Dir, "lab.yaml"))
	require.NoError(t, err)
	return string(b)
}

// backups: five backups with retention 3 leave three; the newest restores
// into a fresh node with every row written before it.
func backups(t *testing.T, l *labtest.Lab) {
	psql := func(node, sql string) string {
		out, c := l.Exec(node, "runuser", "-u", "postgres", "--", "psql", "-d", "eddie", "-Atc", sql)
		require.Equal(t, 0, c, "%s: %s: %s", node, sql, out)
		return strings.TrimSpace(out)
	}
	for i := 1; i <= 5; i++ {
		psql("db1", fmt.Sprintf("INSERT INTO users (name, email) VALUES ('backup-%d', 'backup-%d@eddie.lab')", i, i))
		l.MustRun("exec", "backup1", "--", "eddie-backup")
	}
	list := l.MustRun("exec", "backup1", "--", "eddie-backup", "list")
	kept := 0
	for _, line := range strings.Split(list, "\n") {
		if strings.HasPrefix(line, "db ") && !strings.Contains(line, "FAILED") {
			kept++
		}
	}
	assert.Equal(t, 3, kept, "three backups kept:\n%s", list)
	psql("db1", "INSERT INTO users (name, email) VALUES ('after', 'after@eddie.lab')")

	l.Write("lab.yaml", labtest.Edit(t, readLab(t, l), "    count: 0\n", "    count: 1\n"))
	l.MustRun("up")
	cmd := l.Dir + "/scripts/restore-latest.sh"
	out, err := execIn(l, cmd, "restore1")
	require.NoError(t, err, out)
	assert.Equal(t, "5", psql("restore1", "SELECT count(*) FROM users WHERE name LIKE 'backup-%'"))
	assert.Equal(t, "0", psql("restore1", "SELECT count(*) FROM users WHERE name = 'after'"), "the restore is the backup, not later")
	assert.Equal(t, "f", psql("restore1", "SELECT pg_is_in_recovery()"))
}

// execIn runs a script of the lab's folder there, with LAB naming the lab
// binary under test.
func execIn(l *labtest.Lab, script string, args ...string) (string, error) {
	cmd := exec.Command(script, args...)
	cmd.Dir = l.Dir
	cmd.Env = append(os.Environ(), "LAB="+l.Bin, "CI=true")
	out, err := cmd.CombinedOutput()
	return string(out), err
}
