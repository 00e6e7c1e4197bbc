package todomvc

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/labctl/lab/labtest"
)

// primaryNode is the pg node discovery names the primary (what the apps
// write to).
func primaryNode(t *testing.T, l *labtest.Lab) string {
	t.Helper()
	var p string
	eventually(t, "an app knows the primary", 30*time.Second, func() bool {
		out, c := l.Exec("app1", "cat", "/etc/todo/discovery.json")
		var d struct{ Primary string }
		if c != 0 || json.Unmarshal([]byte(out), &d) != nil || d.Primary == "" {
			return false
		}
		p = d.Primary
		return true
	})
	return p
}

func dials(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// fromOutside: the host is outside. Only HTTP and HTTPS on the nginx
// nodes (and their floating address) and SSH on adm1's port answer it.
func fromOutside(t *testing.T, l *labtest.Lab) {
	tlsClient := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // the nodes' snakeoil certificate
	for _, h := range []string{nginx1, nginx2, vip} {
		assert.True(t, statusOK("http://"+h+"/api/ready"), "http on %s", h)
		resp, err := tlsClient.Get("https://" + h + "/api/ready")
		if assert.NoError(t, err, "https on %s", h) {
			resp.Body.Close()
			assert.Equal(t, 200, resp.StatusCode)
		}
	}
	c, err := net.DialTimeout("tcp", adm1+":2222", 3*time.Second)
	require.NoError(t, err, "SSH on adm1:2222")
	banner := make([]byte, 8)
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, _ := c.Read(banner)
	c.Close()
	assert.Equal(t, "SSH-2.0-", string(banner[:n]))
	for _, addr := range []string{ip(31) + ":5432", ip(32) + ":5432", ip(71) + ":8000", adm1 + ":80", adm1 + ":22", ip(51) + ":7946"} {
		assert.False(t, dials(addr), "%s answers the host", addr)
	}
	// Inside the lab, traffic flows: an app reaches a pg node's 5432.
	_, code := l.Exec("app1", "bash", "-c", "exec 3<>/dev/tcp/pg2/5432")
	assert.Equal(t, 0, code, "app1 reaches pg2:5432")
}

// lookup asks the lab's own DNS (dnsmasq on the bridge) for a name.
func lookup(t *testing.T, fam, host string) []string {
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "udp", ip(1)+":53")
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	as, err := r.LookupIP(ctx, fam, host)
	if err != nil {
		return nil
	}
	var out []string
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}

// dnsAndFloating: www answers with every live nginx node, in rotation; the
// floating address moves to another nginx node when its holder dies.
func dnsAndFloating(t *testing.T, l *labtest.Lab) {
	www := "www." + name + ".lab"
	got := lookup(t, "ip4", www)
	assert.ElementsMatch(t, []string{nginx1, nginx2}, got)
	firsts := map[string]bool{}
	for i := 0; i < 10; i++ {
		if a := lookup(t, "ip4", www); len(a) > 0 {
			firsts[a[0]] = true
		}
	}
	assert.Len(t, firsts, 2, "the answers rotate")
	st := l.Status()
	assert.ElementsMatch(t, []string{st["nginx1"].Addresses6[0], st["nginx2"].Addresses6[0]}, lookup(t, "ip6", www), "AAAA")

	holder := func() string {
		resp, err := client.Get("http://" + vip + "/nginx-health")
		if err != nil {
			return ""
		}
		resp.Body.Close()
		return resp.Header.Get("X-Nginx")
	}
	var first string
	eventually(t, "the floating address answers", 10*time.Second, func() bool { first = holder(); return first != "" })
	assert.Equal(t, "nginx1", first, "nginx1 has the highest priority")
	id := fault(t, l, "kill", first)
	killed := time.Now()
	var second string
	eventually(t, "the floating address moves", 5*time.Second, func() bool { second = holder(); return second != "" && second != first })
	t.Logf("the floating address moved from %s to %s in %.1fs", first, second, time.Since(killed).Seconds())
	assert.Equal(t, []string{nginx2}, lookup(t, "ip4", www), "www leaves the killed node out")
	l.MustRun("fault", "heal", id)
	eventually(t, "www answers with nginx1 again", 10*time.Second, func() bool { return len(lookup(t, "ip4", www)) == 2 })
	eventually(t, "nginx1 takes the floating address back", 30*time.Second, func() bool { return holder() == "nginx1" })
}

// ipv6: the app answers over IPv6 from the host and between nodes.
func ipv6(t *testing.T, l *labtest.Lab) {
	st := l.Status()
	six := st["nginx1"].Addresses6[0]
	resp, b := call(t, "GET", "http://["+six+"]/api/todos", nil)
	assert.Equal(t, 200, resp.StatusCode, string(b))
	other := st["nginx2"].Addresses6[0]
	out, code := l.Exec("app1", "python3", "-c", "import urllib.request; print(urllib.request.urlopen('http://["+other+"]/api/ready', timeout=5).status)")
	assert.Equal(t, 0, code, out)
	assert.Equal(t, "200\n", out)
	out, _ = l.Exec("app1", "getent", "-s", "dns", "ahostsv6", "www")
	assert.Contains(t, out, six+" ", "AAAA from inside")
	out, _ = l.Exec("app1", "getent", "-s", "dns", "ahostsv6", "pg1")
	assert.Contains(t, out, st["pg1"].Addresses6[0]+" ")
}

// operations: logs, metrics and dumps of every node arrive on adm1.
func operations(t *testing.T, l *labtest.Lab) {
	marker := fmt.Sprintf("e2e-marker-%d", time.Now().UnixNano())
	_, code := l.Exec("pg2", "logger", "-t", "e2e", marker)
	require.Equal(t, 0, code)
	eventually(t, "pg2's line on adm1", 20*time.Second, func() bool {
		out, c := l.Exec("adm1", "todo-logs", marker, "pg2")
		return c == 0 && strings.Contains(out, marker)
	})

	st := l.Status()
	eventuallySee(t, "collectd values of every node on adm1", 60*time.Second, func() string {
		out, _ := l.Exec("adm1", "sh", "-c", "ls /var/lib/collectd/rrd/*/load/load.rrd")
		return out
	}, func(out string) bool {
		for n := range st {
			if !strings.Contains(out, "/rrd/"+n+"/load/load.rrd") {
				return false
			}
		}
		return true
	})
	eventually(t, "the graphs page shows every node", 30*time.Second, func() bool {
		page := admGet(t, l, "/graphs/")
		for n := range st {
			if !strings.Contains(page, "<h2>"+n+"</h2>") {
				return false
			}
		}
		return true
	})

	// A dump newer than the last write is off the database nodes, on adm1;
	// retention keeps five of each node.
	title := fmt.Sprintf("dumped %d", time.Now().UnixNano())
	resp, b := call(t, "POST", "http://"+vip+"/api/todos", map[string]any{"title": title})
	require.Equal(t, 201, resp.StatusCode, string(b))
	p := primaryNode(t, l)
	for i := 0; i < 7; i++ {
		out, c := l.Exec(p, "/usr/local/bin/todo-dump") // what the timer runs (systemd limits starts to 5 in 10 s)
		require.Equal(t, 0, c, out)
	}
	out, c := l.Exec("adm1", "sh", "-c", "ls -1t /srv/dumps/"+p+"/*.sql.gz | head -1 | xargs zcat | grep -c '"+title+"'")
	assert.Equal(t, 0, c, "the newest dump has the last write: %s", out)
	// (A dump the timer ships is in place a moment before retention runs.)
	eventuallySee(t, "retention keeps five", 20*time.Second, func() string {
		out, _ := l.Exec("adm1", "sh", "-c", "ls /srv/dumps/"+p+"/*.sql.gz | wc -l")
		return strings.TrimSpace(out)
	}, func(out string) bool { return out == "5" })
	// The node's timer dumps every 30 s too: a dump it is making or
	// shipping just now is on the node for that while, and only then.
	eventuallySee(t, "no dump stays on the database node", 20*time.Second, func() string {
		out, _ := l.Exec(p, "ls", "-A", "/var/backups/todo/")
		return out
	}, func(out string) bool { return strings.TrimSpace(out) == "" })
}

// writer posts a todo through the floating address every 100 ms and keeps
// what happened.
type writer struct {
	mu   sync.Mutex
	ok   []int       // ids written
	at   []time.Time // when each attempt ended
	good []bool
	stop chan struct{}
	done chan struct{}
}

func startWriter(t *testing.T) *writer {
	w := &writer{stop: make(chan struct{}), done: make(chan struct{})}
	c := &http.Client{Timeout: 3 * time.Second}
	go func() {
		defer close(w.done)
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			default:
			}
			body := strings.NewReader(fmt.Sprintf(`{"title": "during the failover %d"}`, i))
			resp, err := c.Post("http://"+vip+"/api/todos", "application/json", body)
			id, good := 0, false
			if err == nil {
				var td todo
				good = resp.StatusCode == 201 && json.NewDecoder(resp.Body).Decode(&td) == nil
				id = td.ID
				resp.Body.Close()
			}
			w.mu.Lock()
			w.at, w.good = append(w.at, time.Now()), append(w.good, good)
			if good {
				w.ok = append(w.ok, id)
			}
			w.mu.Unlock()
			time.Sleep(100 * time.Millisecond)
		}
	}()
	return w
}

func (w *writer) end() { close(w.stop); <-w.done }

// longestOutage is the longest run of failed writes, from the last success
// before it to the first success after it.
func (w *writer) longestOutage() (longest time.Duration, from, to time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	lastOK := time.Time{}
	for i, g := range w.good {
		if !g {
			continue
		}
		if !lastOK.IsZero() && i > 0 && !w.good[i-1] && w.at[i].Sub(lastOK) > longest {
			longest, from, to = w.at[i].Sub(lastOK), lastOK, w.at[i]
		}
		lastOK = w.at[i]
	}
	return longest, from, to
}

func (w *writer) succeededAfter(t time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := len(w.at) - 1; i >= 0 && w.at[i].After(t); i-- {
		if w.good[i] {
			return true
		}
	}
	return false
}

// failover: kill the primary while a loop writes through the app. A
// standby takes over within 15 s, the others follow it, writes resume
// without a restart, and the old primary comes back as a standby (rewound)
// that holds every row.
func failover(t *testing.T, l *labtest.Lab) {
	old := primaryNode(t, l)
	require.Equal(t, "pg1", old)
	w := startWriter(t)
	time.Sleep(time.Second)
	id := fault(t, l, "kill", old)
	killed := time.Now()
	eventually(t, "writes succeed again after the kill", 30*time.Second, func() bool { return w.succeededAfter(killed.Add(time.Second)) })
	time.Sleep(2 * time.Second)
	w.end()
	outage, from, to := w.longestOutage()
	t.Logf("writes failed for %.1fs around the kill of %s at %s: from %s to %s (UTC)", outage.Seconds(), old,
		killed.UTC().Format("15:04:05.000"), from.UTC().Format("15:04:05.000"), to.UTC().Format("15:04:05.000"))
	assert.LessOrEqual(t, outage, 15*time.Second, "writes fail for at most 15 s")
	p := primaryNode(t, l)
	assert.NotEqual(t, old, p)
	psql := func(node, sql string) string {
		out, c := l.Exec(node, "runuser", "-u", "postgres", "--", "psql", "-d", "todo", "-qtAc", sql)
		require.Equal(t, 0, c, "%s: %s: %s", node, sql, out)
		return strings.TrimSpace(out)
	}
	assert.Equal(t, "f", psql(p, "select pg_is_in_recovery()"))
	for _, n := range []string{"pg2", "pg3"} {
		// The election as each standby saw it.
		out, _ := l.Exec(n, "sh", "-c", "journalctl --no-pager -o short-precise -u pg-agent | grep -E 'pg-agent\\[.*(no live primary|promot|rewind|standby of|did not start|follow)' | tail -n 8")
		t.Logf("%s's agent:\n%s", n, out)
	}
	for _, n := range []string{"app1", "app2"} {
		// When each app learned the new primary, and the writes it retried.
		out, _ := l.Exec(n, "sh", "-c", "{ journalctl --no-pager -o short-precise -u todo; journalctl --no-pager -o short-precise -t lab-discovery; } | grep -E 'primary|app (up|down)' | sort | tail -n 8")
		t.Logf("%s:\n%s", n, out)
	}
	for _, n := range []string{"pg2", "pg3"} {
		if n == p {
			continue
		}
		eventually(t, n+" follows "+p, 30*time.Second, func() bool {
			out, c := l.Exec(n, "runuser", "-u", "postgres", "--", "psql", "-qtAc", "select sender_host from pg_stat_wal_receiver where status = 'streaming'")
			return c == 0 && strings.TrimSpace(out) == p
		})
	}

	l.MustRun("fault", "heal", id)
	eventually(t, old+" rejoins as a standby of "+p, 90*time.Second, func() bool {
		out, c := l.Exec(old, "runuser", "-u", "postgres", "--", "psql", "-qtAc", "select sender_host from pg_stat_wal_receiver where status = 'streaming'")
		return c == 0 && strings.TrimSpace(out) == p
	})
	assert.Equal(t, "t", psql(old, "select pg_is_in_recovery()"), "no second primary")
	w.mu.Lock()
	ids := slices.Clone(w.ok)
	w.mu.Unlock()
	require.NotEmpty(t, ids)
	want := psql(p, "select count(*) from todos")
	eventually(t, old+" holds every row", 30*time.Second, func() bool {
		return psql(old, "select count(*) from todos") == want
	})
	last := ids[len(ids)-1]
	assert.Equal(t, "1", psql(old, fmt.Sprintf("select count(*) from todos where id = %d", last)))
	out, _ := l.Exec(old, "journalctl", "-u", "pg-agent", "--no-pager", "-o", "cat")
	assert.Contains(t, out, "rewinding onto "+p)
}

// scaling: app 2→3 and nginx 2→3, each on its own.
func scaling(t *testing.T, l *labtest.Lab) {
	src := mustRead(t, filepath.Join(l.Dir, "lab.yaml")) // as the test wrote it
	apps3 := withCount(t, src, "app", 3)
	l.Write("lab.yaml", apps3)
	_, stderr, code := l.Run("up")
	require.Equal(t, 0, code, "app scale-out:\n%s", stderr)
	for _, n := range []string{"nginx1", "nginx2"} {
		eventually(t, "app3 in "+n+"'s upstreams", 20*time.Second, func() bool {
			out, _ := l.Exec(n, "cat", "/etc/nginx/todo-upstreams.conf")
			return strings.Contains(out, ip(73)+":")
		})
	}
	served := map[string]bool{}
	eventually(t, "app3 receives traffic", 15*time.Second, func() bool {
		resp, _ := call(t, "GET", "http://"+nginx1+"/api/todos", nil)
		served[resp.Header.Get("X-Served-By")] = true
		return served["app3"]
	})
	assert.Len(t, l.Status(), 9, "only app grew")

	l.Write("lab.yaml", withCount(t, apps3, "nginx", 3))
	_, stderr, code = l.Run("up")
	require.Equal(t, 0, code, "nginx scale-out:\n%s", stderr)
	eventually(t, "nginx3 serves", 10*time.Second, func() bool { return statusOK("http://" + nginx3 + "/api/todos") })
	assert.ElementsMatch(t, []string{nginx1, nginx2, nginx3}, lookup(t, "ip4", "www."+name+".lab"))
	out, code := l.Exec("nginx3", "systemctl", "is-active", "keepalived")
	assert.Equal(t, 0, code, out)
	eventually(t, "nginx3 on the status page", 10*time.Second, func() bool {
		return strings.Contains(admGet(t, l, "/"), "<td>nginx3</td>")
	})
}
