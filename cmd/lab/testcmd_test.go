package main

import (
	"bufio"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
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

const testLab = `
name: it-test
networks: [{name: lan, subnet: 10.97.20.0/24}]
defaults: {memory: 256M}
nodes:
  - role: web
    count: 2
    provision:
      - inline: echo up-marker > /root/m
tests:
  - name: host facts
    run: test "$LAB_ROLE_WEB_IPS_FIRST" = 10.97.20.11 && test "$LAB_NODE_WEB2_IP" = 10.97.20.12 && grep -q web2 "$LAB_INVENTORY"
  - {name: in a node, node: web2, run: "test $(hostname) = web2 && cat /root/m"}
  - {name: fails, run: "echo this-went-wrong; exit 4"}
  - {name: too slow, run: "sleep 60", timeout: 1s}
`

// lab test runs the file's tests in order (all of them), writes JUnit that
// counts them, keeps artifacts on failure and leaves nothing.
func TestIntegrationLabTest(t *testing.T) {
	labtest.Integration(t)
	l := labtest.New(t, "it-test", map[string]string{"lab.yaml": testLab})
	junit := filepath.Join(t.TempDir(), "report.xml")
	out, stderr, code := l.Run("test", "--junit", junit)
	require.Equal(t, 1, code, "a test failed: exit 1\n%s%s", out, stderr)
	assert.Contains(t, out, "--- PASS: host facts")
	assert.Contains(t, out, "--- PASS: in a node")
	assert.Contains(t, out, "--- FAIL: fails (exit 4")
	assert.Contains(t, out, "--- FAIL: too slow (timed out after 1s")

	var doc struct {
		XMLName  xml.Name `xml:"testsuites"`
		Tests    int      `xml:"tests,attr"`
		Failures int      `xml:"failures,attr"`
		Suites   []struct {
			Cases []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
					Text    string `xml:",chardata"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	b, err := os.ReadFile(junit)
	require.NoError(t, err)
	require.NoError(t, xml.Unmarshal(b, &doc))
	assert.Equal(t, 4, doc.Tests)
	assert.Equal(t, 2, doc.Failures)
	require.Len(t, doc.Suites, 1)
	require.Len(t, doc.Suites[0].Cases, 4)
	c := doc.Suites[0].Cases[2]
	assert.Equal(t, "fails", c.Name)
	require.NotNil(t, c.Failure)
	assert.Equal(t, "exit 4", c.Failure.Message)
	assert.Contains(t, c.Failure.Text, "this-went-wrong")
	assert.Nil(t, doc.Suites[0].Cases[0].Failure)

	// The default artifacts folder outlives the lab: the lab is gone.
	dirs, _ := filepath.Glob(filepath.Join(l.Dir, ".lab", "artifacts", "*"))
	require.Len(t, dirs, 1, "one artifacts folder")
	log, err := os.ReadFile(filepath.Join(dirs[0], "tests", "03-fails.log"))
	require.NoError(t, err)
	assert.Contains(t, string(log), "this-went-wrong")
	var result struct {
		Outcome string `json:"outcome"`
		Tests   []struct {
			Name   string `json:"name"`
			Passed bool   `json:"passed"`
		} `json:"tests"`
	}
	b, err = os.ReadFile(filepath.Join(dirs[0], "result.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &result))
	assert.Equal(t, "failed", result.Outcome)
	require.Len(t, result.Tests, 4)
	assert.True(t, result.Tests[1].Passed)
	assert.Equal(t, "not created", l.Status()["web1"].State, "destroyed")
	require.NoError(t, os.RemoveAll(filepath.Join(l.Dir, ".lab")))
	labtest.AssertNoLeaks(t, "it-test", l.Dir)

	// A command after -- replaces the file's tests; its failure is exit 1
	// and every node's journal, with its boot, is in the artifacts.
	art := filepath.Join(t.TempDir(), "art")
	_, stderr, code = l.Run("test", "--artifacts", art, "--", "sh", "-c", "exit 3")
	require.Equal(t, 1, code, stderr)
	for _, n := range []string{"web1", "web2"} {
		j, err := os.ReadFile(filepath.Join(art, "nodes", n, "journal.txt"))
		require.NoError(t, err)
		assert.Regexp(t, n+` systemd\[1\]: (Startup finished|Reached target multi-user)`, string(j), n)
		p, err := os.ReadFile(filepath.Join(art, "nodes", n, "provision.log"))
		require.NoError(t, err)
		assert.Contains(t, string(p), "echo up-marker", n)
	}
	for _, f := range []string{"status.json", "events.jsonl", "lab.yaml", "result.json"} {
		assert.FileExists(t, filepath.Join(art, f))
	}
	labtest.AssertNoLeaks(t, "it-test", l.Dir)

	// Success: exit 0, no artifacts unless asked, nothing left.
	out, stderr, code = l.Run("test", "--", "true")
	require.Equal(t, 0, code, out+stderr)
	assert.Contains(t, out, "lab test: 1 tests passed")
	assert.NoDirExists(t, filepath.Join(l.Dir, ".lab"))
	labtest.AssertNoLeaks(t, "it-test", l.Dir)

	// --keep-on-failure leaves the lab up and says how to get in.
	out, _, code = l.Run("test", "--keep-on-failure", "--", "false")
	require.Equal(t, 1, code)
	assert.Contains(t, out, "lab ssh NODE")
	assert.Equal(t, "running", l.Status()["web1"].State)
	l.MustRun("destroy")
	_ = os.RemoveAll(filepath.Join(l.Dir, ".lab"))

	// Usage errors: exit 2 before anything is made.
	for _, args := range [][]string{{"test", "extra"}, {"test", "--timeout", "0s", "--", "true"}, {"test", "--from", "nope", "--", "true"}} {
		_, stderr, code := l.Run(args...)
		assert.Equal(t, 2, code, "%v: %s", args, stderr)
	}
	labtest.AssertNoLeaks(t, "it-test", l.Dir)
}

// A lab whose provisioning fails: exit 3, and the artifacts name the step
// and hold its log.
func TestIntegrationLabTestNotUp(t *testing.T) {
	labtest.Integration(t)
	l := labtest.New(t, "it-test2", map[string]string{"lab.yaml": `
name: it-test2
networks: [{name: lan, subnet: 10.97.21.0/24}]
defaults: {memory: 256M}
nodes:
  - role: db
    provision:
      - inline: "true"
      - inline: echo before-the-fall; exit 7
tests: [{name: never, run: "true"}]
`})
	art := filepath.Join(t.TempDir(), "art")
	junit := filepath.Join(t.TempDir(), "j.xml")
	_, stderr, code := l.Run("test", "--artifacts", art, "--junit", junit)
	require.Equal(t, 3, code, stderr)
	upErr, err := os.ReadFile(filepath.Join(art, "up-error.txt"))
	require.NoError(t, err)
	assert.Contains(t, string(upErr), "node db1: provision step 2 (inline: echo before-the-fall; exit 7)")
	plog, err := os.ReadFile(filepath.Join(art, "nodes", "db1", "provision.log"))
	require.NoError(t, err)
	assert.Contains(t, string(plog), "before-the-fall")
	b, err := os.ReadFile(junit)
	require.NoError(t, err)
	assert.Contains(t, string(b), `<testcase name="lab up"`)
	assert.Contains(t, string(b), `<skipped message="the lab did not come up">`)
	labtest.AssertNoLeaks(t, "it-test2", l.Dir)
}

// SIGTERM while a test runs: artifacts collected, lab destroyed, exit
// non-zero, and the test's processes gone.
func TestIntegrationLabTestSIGTERM(t *testing.T) {
	labtest.Integration(t)
	l := labtest.New(t, "it-test", map[string]string{"lab.yaml": testLab})
	art := filepath.Join(t.TempDir(), "art")
	marker := filepath.Join(t.TempDir(), "child-pid")
	seen, rest, code := signalWhen(t, l, false, "=== RUN", func() bool { return fileHas(marker) }, syscall.SIGTERM,
		"test", "--artifacts", art, "--", "sh", "-c", "sleep 300 & echo $! > "+marker+"; wait")
	require.True(t, seen)
	assert.Equal(t, exitInterrupted, code, rest)
	assert.Contains(t, rest, "lab test: interrupted")
	for _, n := range []string{"web1", "web2"} {
		assert.FileExists(t, filepath.Join(art, "nodes", n, "journal.txt"))
	}
	b, err := os.ReadFile(marker)
	require.NoError(t, err)
	var pid int
	_, err = fmt.Sscan(strings.TrimSpace(string(b)), &pid)
	require.NoError(t, err)
	eventually(t, fmt.Sprintf("the test's child %d is gone", pid), 10*time.Second, func() bool {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		_, after, _ := strings.Cut(string(st), ") ")
		return err != nil || strings.HasPrefix(after, "Z") // a zombie is dead, waiting for init
	})
	labtest.AssertNoLeaks(t, "it-test", l.Dir)
}

// signalWhen runs lab with args in the lab's folder and sends it sig once
// a line of the stream it watches (stdout, or stderr with onStderr)
// contains match and ready (when given) holds. It returns whether the line
// came, what that stream said after it, and lab's exit code.
func signalWhen(t *testing.T, l *labtest.Lab, onStderr bool, match string, ready func() bool, sig os.Signal, args ...string) (bool, string, int) {
	t.Helper()
	cmd := exec.Command(l.Bin, args...)
	cmd.Dir, cmd.Env = l.Dir, append(os.Environ(), "CI=true")
	pipe := cmd.StdoutPipe
	if onStderr {
		pipe = cmd.StderrPipe
	}
	r, err := pipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	sc := bufio.NewScanner(r)
	seen := false
	for !seen && sc.Scan() {
		seen = strings.Contains(sc.Text(), match)
	}
	deadline := time.Now().Add(30 * time.Second)
	for ready != nil && !ready() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	_ = cmd.Process.Signal(sig) // an error: it has ended already (seen says whether it got there)
	var rest strings.Builder
	for sc.Scan() {
		rest.WriteString(sc.Text() + "\n")
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return seen, rest.String(), ee.ExitCode()
	}
	require.NoError(t, err)
	return seen, rest.String(), 0
}

func fileHas(p string) bool {
	b, err := os.ReadFile(p)
	return err == nil && len(strings.TrimSpace(string(b))) > 0
}

// lab logs -f shows a line written after it started following, and ends
// on Ctrl-C with exit 0; --provision prints the provisioning log.
func TestIntegrationLogs(t *testing.T) {
	labtest.Integration(t)
	l := labtest.New(t, "it-test", map[string]string{"lab.yaml": testLab})
	l.MustRun("up")
	assert.Contains(t, l.MustRun("logs", "web1", "--provision"), "up-marker")
	assert.Regexp(t, `web2 \| .*web2 systemd`, l.MustRun("logs", "--role", "web", "-n", "5"))

	followShows(t, l, "web1")
	// The node's journalctl gets its hangup as lab ends: it is gone soon
	// after, not necessarily before lab has returned.
	eventually(t, "the node's journalctl ended with the follow", 10*time.Second, func() bool {
		out, _ := l.Exec("web1", "sh", "-c", "pgrep -x journalctl || echo none")
		return strings.TrimSpace(out) == "none"
	})

	// The same for any exec: Ctrl-C ends the command in the node too.
	ex := exec.Command(l.Bin, "exec", "web2", "--", "sh", "-c", "sleep 600; echo not-ended")
	ex.Dir = l.Dir
	require.NoError(t, ex.Start())
	eventually(t, "the sleep runs in web2", 10*time.Second, func() bool {
		out, _ := l.Exec("web2", "pgrep", "-x", "sleep")
		return strings.TrimSpace(out) != ""
	})
	require.NoError(t, ex.Process.Signal(os.Interrupt))
	_ = ex.Wait()
	eventually(t, "the sleep in web2 ended with lab exec", 10*time.Second, func() bool {
		out, _ := l.Exec("web2", "sh", "-c", "pgrep -x sleep || echo none")
		return strings.TrimSpace(out) == "none"
	})

	_, _, code := l.Run("logs", "nope1")
	assert.Equal(t, 2, code)
	_, _, code = l.Run("logs", "web1", "--provision", "--role", "web")
	assert.Equal(t, 2, code)
}

// followShows checks that lab logs NODE -f shows a line logged in the node
// after it started following, and that Ctrl-C ends it with exit 0.
func followShows(t *testing.T, l *labtest.Lab, node string) {
	t.Helper()
	cmd := exec.Command(l.Bin, "logs", node, "-f", "-n", "1")
	cmd.Dir = l.Dir
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	<-lines // the last line before following
	_, c := l.Exec(node, "logger", "-t", "it-logs", "written-after-follow")
	require.Equal(t, 0, c)
	seen := false
	timeout := time.After(30 * time.Second)
	for !seen {
		select {
		case line := <-lines:
			seen = strings.Contains(line, "written-after-follow")
		case <-timeout:
			_ = cmd.Process.Kill()
			t.Fatalf("lab logs %s -f did not show the new line", node)
		}
	}
	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	assert.NoError(t, cmd.Wait(), "Ctrl-C ends a follow with exit 0")
}

// SIGTERM while the lab comes up: the same, artifacts and nothing left.
func TestIntegrationLabTestSIGTERMDuringUp(t *testing.T) {
	labtest.Integration(t)
	l := labtest.New(t, "it-test3", map[string]string{"lab.yaml": `
name: it-test3
networks: [{name: lan, subnet: 10.97.22.0/24}]
defaults: {memory: 256M}
nodes:
  - role: slow
    provision: [{inline: sleep 300}]
tests: [{name: never, run: "true"}]
`})
	art := filepath.Join(t.TempDir(), "art")
	seen, _, code := signalWhen(t, l, true, "step 1", nil, syscall.SIGTERM, "test", "--artifacts", art)
	require.True(t, seen)
	assert.Equal(t, exitInterrupted, code)
	assert.FileExists(t, filepath.Join(art, "nodes", "slow1", "journal.txt"))
	assert.FileExists(t, filepath.Join(art, "up-error.txt"))
	labtest.AssertNoLeaks(t, "it-test3", l.Dir)
}
