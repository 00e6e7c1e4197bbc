// Package sneklog holds the SnekLog lab; its end-to-end test proves the
// design on the real lab: an even balancer with a maintenance page,
// pictures in the S3 store and only their keys in the database, a rolling
// update with no failed request, failover with an alert that fires and
// resolves, every node's logs on mon, and scaling without edits.
package sneklog

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/labctl/lab/labtest"
)

const (
	name   = "snek-e2e"
	subnet = "10.97.29"
	port   = "28480" // below the ephemeral range (32768-60999), which outgoing connections take ports from
)

var (
	site   = "http://127.0.0.1:" + port
	mon    = subnet + ".91"
	client = &http.Client{Timeout: 10 * time.Second}
)

// copyLab builds the store's S3 server (once: build-store.sh keeps it) and
// copies the lab with its own name, subnet and port.
func copyLab(t *testing.T) map[string]string {
	out, err := exec.Command("scripts/build-store.sh").CombinedOutput()
	require.NoError(t, err, "scripts/build-store.sh: %s", out)
	return labtest.CopyLab(t, "name: sneklog", "name: "+name,
		"10.83.0.0/24", subnet+".0/24", "127.0.0.1:8480:80", "127.0.0.1:"+port+":80")
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := client.Get(url)
	require.NoError(t, err, url)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// loop sends requests through the balancer, one after another with 20 ms
// between them, until stopped, and counts those that failed (an error or
// not 200) and the versions that answered.
type loop struct {
	*labtest.Loop
	mu       sync.Mutex
	versions map[string]int
}

func startLoop() *loop {
	lp := &loop{versions: map[string]int{}}
	// About 40 requests a second: steady traffic, not a load test that
	// takes the two cores from what it measures.
	lp.Loop = labtest.StartLoop(20*time.Millisecond, func() bool {
		resp, err := client.Get(site + "/api/animals")
		if err != nil {
			return false
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		lp.mu.Lock()
		lp.versions[resp.Header.Get("X-Version")]++
		lp.mu.Unlock()
		return resp.StatusCode == 200
	})
	return lp
}

func (lp *loop) end() (sent, failed int64) { return lp.End(time.Second) }

func eventually(t *testing.T, d time.Duration, what string, f func() bool) time.Duration {
	t.Helper()
	return labtest.Eventually(t, d, 250*time.Millisecond, what, f)
}

func TestSnekLog(t *testing.T) {
	labtest.Integration(t)
	l := labtest.New(t, name, copyLab(t))
	_, stderr, code := l.Run("up")
	require.Equal(t, 0, code, "lab up:\n%s", stderr)
	labtest.RequireRouteVia(t, mon, "lab-"+name+"-0")
	out, stderr, code := l.Run("test")
	require.Equal(t, 0, code, "lab test:\n%s\n%s", out, stderr)
	assert.Contains(t, out+stderr, "2 tests passed")

	balance(t, 2)
	pictures(t, l)
	maintenance(t, l)
	rollout(t, l)
	failover(t, l)
	logs(t, l)
	scale(t, l)

	l.MustRun("destroy")
	labtest.AssertNoLeaks(t, name, l.Dir)
}

// balance: 100 requests reach every app, each within ±20% of its share.
func balance(t *testing.T, apps int) {
	seen := map[string]int{}
	for i := 0; i < 100; i++ {
		resp, _ := get(t, site+"/")
		require.Equal(t, 200, resp.StatusCode)
		seen[resp.Header.Get("X-Served-By")]++
	}
	t.Logf("100 requests: %v", seen)
	require.Len(t, seen, apps, "%v", seen)
	share := 100.0 / float64(apps)
	for node, n := range seen {
		assert.InDelta(t, share, float64(n), share*0.2, "%s served %d of 100", node, n)
	}
}

// pictures: an upload goes to the bucket (read back with s3cmd), the row
// holds only its key, and the app serves it back.
func pictures(t *testing.T, l *labtest.Lab) {
	pic := make([]byte, 50_000)
	_, _ = rand.Read(pic)
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	part, err := w.CreateFormFile("picture", "monty.jpg")
	require.NoError(t, err)
	part.Write(pic)
	w.Close()
	resp, err := client.Post(site+"/api/animals/1/pictures", w.FormDataContentType(), &body)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 201, resp.StatusCode, string(b))
	var row struct {
		ID   int    `json:"id"`
		Key  string `json:"s3_key"`
		Size int    `json:"size"`
	}
	require.NoError(t, json.Unmarshal(b, &row))
	assert.Equal(t, len(pic), row.Size)

	// Through the S3 API, with a real client, from mon1.
	out, c := l.Exec("mon1", "sh", "-c", "s3cmd --host=store1:7070 --host-bucket=store1:7070 --no-ssl "+
		"--access_key=sneklog --secret_key=sneklog-lab-secret get s3://sneklog-pictures/"+row.Key+" - | sha256sum")
	require.Equal(t, 0, c, out)
	assert.Equal(t, sha256hex(pic), strings.Fields(out)[0], "the object in the bucket is the picture")

	// The database holds the key, no bytes.
	out, c = l.Exec("db1", "runuser", "-u", "postgres", "--", "psql", "-d", "sneklog", "-Atc",
		fmt.Sprintf("SELECT s3_key, size, (SELECT count(*) FROM information_schema.columns WHERE table_name = 'pictures' AND data_type = 'bytea') FROM pictures WHERE id = %d", row.ID))
	require.Equal(t, 0, c, out)
	assert.Equal(t, fmt.Sprintf("%s|%d|0", row.Key, len(pic)), strings.TrimSpace(out))

	resp2, served := get(t, fmt.Sprintf("%s/pictures/%d", site, row.ID))
	assert.Equal(t, 200, resp2.StatusCode)
	assert.Equal(t, sha256hex(pic), sha256hex([]byte(served)), "the app serves the picture back")
}

// maintenance: on, every request gets the maintenance page with 503; off,
// the app again.
func maintenance(t *testing.T, l *labtest.Lab) {
	out, err := manager(l, "maintenance", "on")
	require.NoError(t, err, out)
	for i := 0; i < 20; i++ {
		resp, body := get(t, site+"/api/animals")
		require.Equal(t, 503, resp.StatusCode)
		assert.Equal(t, "120", resp.Header.Get("Retry-After"))
		assert.Contains(t, body, "SnekLog is shedding its skin")
	}
	out, err = manager(l, "maintenance", "off")
	require.NoError(t, err, out)
	resp, _ := get(t, site+"/api/animals")
	assert.Equal(t, 200, resp.StatusCode)
}

// rollout: a new version reaches both apps in under 10 s with no failed
// request.
func rollout(t *testing.T, l *labtest.Lab) {
	lp := startLoop()
	time.Sleep(time.Second)
	start := time.Now()
	out, err := manager(l, "rollout", "2.0")
	took := time.Since(start)
	require.NoError(t, err, out)
	sent, failed := lp.end()
	t.Logf("rollout of 2.0: %.1fs; %d requests, %d failed; versions seen %v", took.Seconds(), sent, failed, lp.versions)
	assert.Less(t, took, 10*time.Second, "the rollout of two apps")
	assert.Zero(t, failed, "requests failed during the rollout")
	for _, node := range []string{"app1", "app2"} {
		out, c := l.Exec(node, "curl", "-fsS", "http://127.0.0.1:8000/version")
		require.Equal(t, 0, c, out)
		assert.Contains(t, out, `"version":"2.0"`, node)
	}
}

// alerts returns the active alerts of a name on mon1's Alertmanager.
func alerts(t *testing.T, name string) []map[string]any {
	t.Helper()
	resp, body := get(t, "http://"+mon+":9093/api/v2/alerts?active=true&filter=alertname%3D%22"+name+"%22")
	require.Equal(t, 200, resp.StatusCode, body)
	var out []map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &out), body)
	return out
}

// failover: app2 killed, the balancer drops it and serves every request;
// AppDown fires within 60 s, and resolves once app2 is back.
func failover(t *testing.T, l *labtest.Lab) {
	require.Empty(t, alerts(t, "AppDown"))
	id := strings.TrimSpace(l.MustRun("fault", "kill", "app2"))
	eventually(t, 10*time.Second, "the balancer drops app2", func() bool {
		out, _ := l.Exec("lb1", "sneklog-lb", "status")
		return strings.Contains(out, "app2 DOWN") || strings.Contains(out, "app2 MAINT")
	})
	lp := startLoop()
	time.Sleep(3 * time.Second)
	sent, failed := lp.end()
	t.Logf("with app2 killed: %d requests, %d failed", sent, failed)
	assert.Zero(t, failed)
	took := eventually(t, 60*time.Second, "AppDown firing for app2", func() bool {
		for _, a := range alerts(t, "AppDown") {
			if strings.HasPrefix(a["labels"].(map[string]any)["instance"].(string), subnet+".32:") &&
				a["status"].(map[string]any)["state"] == "active" {
				return true
			}
		}
		return false
	})
	t.Logf("AppDown fired %.1fs after the balancer dropped app2", took.Seconds())
	l.MustRun("fault", "heal", id)
	eventually(t, 60*time.Second, "AppDown resolved", func() bool { return len(alerts(t, "AppDown")) == 0 })
	eventually(t, 30*time.Second, "app2 back in the balancer", func() bool {
		out, _ := l.Exec("lb1", "sneklog-lb", "status")
		return strings.Contains(out, "app2 UP")
	})
}

// logs: a line logged on app1 is found on mon1.
func logs(t *testing.T, l *labtest.Lab) {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	needle := "needle-" + hex.EncodeToString(b)
	l.MustRun("exec", "app1", "--", "logger", "-t", "sneklog", needle)
	eventually(t, 15*time.Second, "the line on mon1", func() bool {
		out, c := l.Exec("mon1", "sneklog-logs", needle)
		return c == 0 && strings.Contains(out, "app1.log:") && strings.Contains(out, needle)
	})
}

// scale: a third app joins the balancer and monitoring with no other edit.
func scale(t *testing.T, l *labtest.Lab) {
	b, err := os.ReadFile(filepath.Join(l.Dir, "lab.yaml"))
	require.NoError(t, err)
	l.Write("lab.yaml", labtest.Edit(t, string(b), "    count: 2\n", "    count: 3\n"))
	l.MustRun("up")
	balance(t, 3)
	eventually(t, 30*time.Second, "Prometheus scrapes app3", func() bool {
		_, body := get(t, "http://"+mon+":9090/api/v1/query?query=up%7Bjob%3D%22sneklog%22%7D")
		return strings.Contains(body, subnet+".33:8000") && !strings.Contains(body, `"0"]`)
	})
}

// manager runs scripts/sneklog-manager in the lab's folder.
func manager(l *labtest.Lab, args ...string) (string, error) {
	cmd := exec.Command("bash", append([]string{"scripts/sneklog-manager"}, args...)...)
	cmd.Dir = l.Dir
	cmd.Env = append(os.Environ(), "LAB="+l.Bin, "CI=true")
	out, err := cmd.CombinedOutput()
	l.T.Logf("sneklog-manager %s:\n%s", strings.Join(args, " "), out)
	return string(out), err
}

func sha256hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
