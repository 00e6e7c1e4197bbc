package main

import (
	"math/rand"
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
	"github.com/labctl/lab/network"
)

const killLab = `
name: it-rand
networks: [{name: lan, subnet: 10.97.9.0/24}]
nodes:
  - role: db
    provision:
      - inline: sleep 1; echo db > /root/ok
  - role: app
    count: 2
    after: [db]
    ports: ["127.0.0.1:18931:80"]
    provision:
      - inline: getent hosts db1 && echo app > /root/ok
`

// lab up killed with SIGKILL at random moments: each time the next up
// converges at once (never "busy": no child of the killed lab keeps the
// lock), and destroy leaves nothing.
func TestIntegrationKilledAtRandomMoments(t *testing.T) {
	labtest.Integration(t)
	l := labtest.New(t, "it-rand", map[string]string{"lab.yaml": killLab})
	start := time.Now()
	l.MustRun("up")
	full := time.Since(start)
	l.MustRun("destroy")
	seed := time.Now().UnixNano()
	t.Logf("a whole up takes %s; seed %d", full, seed)
	rng := rand.New(rand.NewSource(seed))
	for i := 0; i < 10; i++ {
		at := time.Duration(rng.Int63n(int64(full)))
		cmd := exec.Command(l.Bin, "up")
		cmd.Dir, cmd.Env = l.Dir, append(os.Environ(), "CI=true")
		require.NoError(t, cmd.Start())
		time.Sleep(at)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()

		_, stderr, code := l.Run("up")
		require.Equal(t, 0, code, "kill %d at %s: the next up failed:\n%s", i, at, stderr)
		assert.NotContains(t, stderr, "busy")
		st := l.Status()
		for _, n := range []string{"db1", "app1", "app2"} {
			assert.Equal(t, "running", st[n].State, "kill %d at %s: %s", i, at, n)
			assert.Equal(t, "done", st[n].Provisioned, "kill %d at %s: %s", i, at, n)
		}
		o, _ := l.Exec("app2", "cat", "/root/ok")
		assert.Equal(t, "app\n", o, "kill %d at %s", i, at)
		l.MustRun("destroy")
		labtest.AssertNoLeaks(t, "it-rand", l.Dir)
		if t.Failed() {
			t.Fatalf("stopped after kill %d at %s (seed %d)", i, at, seed)
		}
	}
}

// A lab whose state folder is deleted while it runs is removed by
// destroy --name, which shows what it found first; a running lab whose name
// shares the prefix is untouched, and so is a lab with its state.
func TestIntegrationDestroyByName(t *testing.T) {
	labtest.Integration(t)
	web := labtest.New(t, "itweb", map[string]string{"lab.yaml": `
name: itweb
networks: [{name: lan, subnet: 10.97.10.0/24}, {name: back, subnet: 10.97.11.0/24}]
nodes:
  - {role: n, count: 2, networks: [lan, back], ports: ["127.0.0.1:18932:80"]}
`})
	web2 := labtest.New(t, "itweb2", map[string]string{"lab.yaml": `
name: itweb2
networks: [{name: lan, subnet: 10.97.12.0/24}]
nodes: [{role: n, count: 2}]
`})
	web.MustRun("up")
	web2.MustRun("up")
	require.NotEmpty(t, labtest.Leaks("itweb", ""), "the lab runs")
	require.NoError(t, os.RemoveAll(filepath.Join(web.Dir, ".lab")))

	out := web.MustRun("destroy", "--name", "itweb", "--dry-run")
	for _, want := range []string{"itweb_n1 (lxc)", "itweb_n2 (lxc)", "lab-itweb-0", "lab-itweb-1", "tables of lab_itweb", "socat pid"} {
		assert.Contains(t, out, want)
	}
	assert.NotContains(t, out, "itweb2")
	assert.NotEmpty(t, labtest.Leaks("itweb", ""), "--dry-run removes nothing")

	out = web.MustRun("destroy", "--name", "itweb")
	assert.Contains(t, out, "removed")
	labtest.AssertNoLeaks(t, "itweb", web.Dir)

	// The other lab, whose name starts the same, still runs and answers.
	st := web2.Status()
	assert.Equal(t, "running", st["n1"].State)
	assert.Equal(t, "running", st["n2"].State)
	_, c := web2.Exec("n1", "ping", "-c1", "-W2", "n2")
	assert.Equal(t, 0, c)

	// A lab with its state is never removed by name, nor as an orphan.
	out, stderr, code := web2.Run("destroy", "--name", "itweb2")
	assert.Equal(t, 1, code)
	assert.Contains(t, out, "its state is there: left alone")
	assert.Contains(t, stderr, "run lab destroy there")
	out = web2.MustRun("destroy", "--all-orphans")
	assert.NotContains(t, out, "itweb2")
	assert.Equal(t, "running", web2.Status()["n1"].State)
	web2.MustRun("destroy")
	labtest.AssertNoLeaks(t, "itweb2", web2.Dir)
}

// Lab adv-a's node b1 and lab adv's node a-b1 used to share a container
// name; now each lab has its own, and one's destroy leaves the other whole.
func TestIntegrationNoIDCollision(t *testing.T) {
	labtest.Integration(t)
	a := labtest.New(t, "adv-a", map[string]string{"lab.yaml": "name: adv-a\nnetworks: [{name: lan, subnet: 10.97.14.0/24}]\nnodes: [{role: b}]\n"})
	b := labtest.New(t, "adv", map[string]string{"lab.yaml": "name: adv\nnetworks: [{name: lan, subnet: 10.97.15.0/24}]\nnodes: [{role: a-b}]\n"})
	a.MustRun("up")
	b.MustRun("up")
	ida, idb := a.Status()["b1"].ID, b.Status()["a-b1"].ID
	assert.NotEqual(t, ida, idb)
	a.MustRun("destroy")
	assert.Equal(t, "running", b.Status()["a-b1"].State)
	o, c := b.Exec("a-b1", "hostname")
	assert.Equal(t, 0, c)
	assert.Equal(t, "a-b1", strings.TrimSpace(o))
	b.MustRun("destroy")
}

// A port forward that a killed lab started but never recorded holds the
// lab's port: the next up ends it and starts its own, and destroy ends any
// that are left.
func TestIntegrationUnrecordedForward(t *testing.T) {
	labtest.Integration(t)
	l := labtest.New(t, "it-fwd", map[string]string{"lab.yaml": `
name: it-fwd
networks: [{name: lan, subnet: 10.97.25.0/24}]
nodes:
  - role: web
    ports: ["127.0.0.1:18941:80"]
`})
	l.MustRun("up")
	l.MustRun("halt") // no forward recorded now
	// What a killed lab leaves: socat tagged as the lab's, not in its state.
	orphan := func() chan struct{} {
		socat, err := exec.LookPath("socat")
		require.NoError(t, err)
		cmd := &exec.Cmd{Path: socat, Args: []string{"lab-forward:it-fwd", "TCP-LISTEN:18941,bind=127.0.0.1,reuseaddr,fork", "TCP:10.97.25.11:80"}}
		require.NoError(t, cmd.Start())
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		eventually(t, "the orphan listens", 5*time.Second, func() bool { return network.PortFree("127.0.0.1", 18941) != nil })
		return done
	}
	ended := func(done chan struct{}) bool {
		select {
		case <-done:
			return true
		case <-time.After(5 * time.Second):
			return false
		}
	}
	done := orphan()
	_, stderr, code := l.Run("up")
	require.Equal(t, 0, code, stderr)
	assert.True(t, ended(done), "up ended the unrecorded forward")
	assert.Equal(t, "running", l.Status()["web1"].State)

	l.MustRun("halt")
	done = orphan()
	l.MustRun("destroy")
	assert.True(t, ended(done), "destroy ended the unrecorded forward")
	labtest.AssertNoLeaks(t, "it-fwd", l.Dir)
}
