package provision

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/labctl/lab/providers"
	"github.com/labctl/lab/providers/fake"
	"github.com/labctl/lab/state"
	"github.com/labctl/lab/topology"
)

type world struct {
	dir string
	p   *fake.Provider
	mu  sync.Mutex
	ran []string // node:cmd of every step command run
	// exit code per script basename
	fail map[string]int
}

func newWorld(t *testing.T) *world {
	w := &world{dir: t.TempDir(), p: fake.New("lxc"), fail: map[string]int{}}
	w.p.ExecFunc = func(node string, cmd []string, eio providers.ExecIO) (int, error) {
		if eio.Stdin != nil {
			_, _ = io.Copy(io.Discard, eio.Stdin)
		}
		name := filepath.Base(cmd[len(cmd)-1])
		if strings.HasPrefix(cmd[0], StepDir) {
			name = filepath.Base(cmd[0])
		}
		w.mu.Lock()
		w.ran = append(w.ran, node+":"+name)
		w.mu.Unlock()
		if eio.Stdout != nil {
			fmt.Fprintf(eio.Stdout, "running %s\nsecond line\n", name)
		}
		return w.fail[name], nil
	}
	return w
}

func (w *world) write(t *testing.T, rel, content string) {
	require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(w.dir, rel)), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(w.dir, rel), []byte(content), 0o755))
}

func (w *world) lab(t *testing.T, web int) *topology.Lab {
	src := fmt.Sprintf(`name: pv
networks: [{name: lan, subnet: 10.84.0.0/24}]
nodes:
  - role: db
    provision:
      - shell: db.sh
      - shell: uses-web.sh
      - inline: echo hi
        run: always
  - role: web
    count: %d
    after: [db]
`, web)
	top, err := topology.Parse([]byte(src), filepath.Join(w.dir, "lab.yaml"), w.dir)
	require.NoError(t, err)
	lab, err := topology.Expand(top, nil)
	require.NoError(t, err)
	for _, n := range lab.Nodes {
		require.NoError(t, w.p.Create(context.Background(), providers.Node{Name: n.Name}))
		require.NoError(t, w.p.Start(context.Background(), providers.Node{Name: n.Name}))
	}
	return lab
}

func (w *world) provision(t *testing.T, lab *topology.Lab, node string, prev *state.Provisioning, force bool) (*state.Provisioning, error) {
	w.mu.Lock()
	w.ran = nil
	w.mu.Unlock()
	n := *lab.Node(node)
	return New().Provision(context.Background(), Request{
		Lab: lab, Node: n, Target: providers.Node{Name: n.Name}, Provider: w.p, Previous: prev, Force: force,
	})
}

func TestRerunRule(t *testing.T) {
	w := newWorld(t)
	w.write(t, "db.sh", "#!/bin/sh\necho $LAB_IP\n")
	w.write(t, "uses-web.sh", "#!/bin/sh\necho $LAB_ROLE_WEB_IPS\n")
	lab := w.lab(t, 1)

	// A new node runs everything.
	rec, err := w.provision(t, lab, "db1", nil, false)
	require.NoError(t, err)
	assert.True(t, rec.Done)
	assert.Equal(t, []string{"db1:db-1-db.sh", "db1:db-2-uses-web.sh", "db1:echo hi"}, w.ran)

	// Nothing changed: only the run: always step.
	rec, err = w.provision(t, lab, "db1", rec, false)
	require.NoError(t, err)
	assert.Equal(t, []string{"db1:echo hi"}, w.ran)

	// Scaling web changes LAB_ROLE_WEB_IPS: only the step that uses it runs.
	lab = w.lab(t, 3)
	rec, err = w.provision(t, lab, "db1", rec, false)
	require.NoError(t, err)
	assert.Equal(t, []string{"db1:db-2-uses-web.sh", "db1:echo hi"}, w.ran)

	// Editing a script re-runs that step.
	w.write(t, "db.sh", "#!/bin/sh\necho changed $LAB_IP\n")
	rec, err = w.provision(t, lab, "db1", rec, false)
	require.NoError(t, err)
	assert.Equal(t, []string{"db1:db-1-db.sh", "db1:echo hi"}, w.ran)

	// Force runs everything.
	_, err = w.provision(t, lab, "db1", rec, true)
	require.NoError(t, err)
	assert.Len(t, w.ran, 3)
}

func TestFailedStepResumes(t *testing.T) {
	w := newWorld(t)
	w.write(t, "db.sh", "#!/bin/sh\ntrue\n")
	w.write(t, "uses-web.sh", "#!/bin/sh\ntrue\n")
	lab := w.lab(t, 1)
	w.fail["db-2-uses-web.sh"] = 4
	rec, err := w.provision(t, lab, "db1", nil, false)
	var se *StepError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 4, se.Code)
	assert.Equal(t, "db1", se.Node)
	assert.Contains(t, err.Error(), "node db1: provision step 2 (uses-web.sh): exit 4")
	assert.Contains(t, err.Error(), "running db-2-uses-web.sh\n    second line")
	assert.False(t, rec.Done)
	assert.Equal(t, []string{"db1:db-1-db.sh", "db1:db-2-uses-web.sh"}, w.ran, "steps after a failure must not run")

	// The next run starts at the failed step.
	delete(w.fail, "db-2-uses-web.sh")
	rec, err = w.provision(t, lab, "db1", rec, false)
	require.NoError(t, err)
	assert.True(t, rec.Done)
	assert.Equal(t, []string{"db1:db-2-uses-web.sh", "db1:echo hi"}, w.ran)
}

func TestStepHashUsesOnlyMentionedFacts(t *testing.T) {
	dir := t.TempDir()
	top := &topology.Topology{Dir: dir}
	facts := map[string]string{"LAB_IP": "10.0.0.1", "LAB_ROLE_WEB_IPS": "a b"}
	s := topology.Step{Inline: "echo $LAB_IP"}
	h1, err := StepHash(top, s, facts)
	require.NoError(t, err)
	facts["LAB_ROLE_WEB_IPS"] = "a b c"
	h2, _ := StepHash(top, s, facts)
	assert.Equal(t, h1, h2, "a fact the step does not use changed its hash")
	facts["LAB_IP"] = "10.0.0.2"
	h3, _ := StepHash(top, s, facts)
	assert.NotEqual(t, h1, h3)
	// Reading facts.json means every fact counts.
	s = topology.Step{Inline: "jq .roles /etc/lab/facts.json"}
	h4, _ := StepHash(top, s, facts)
	facts["LAB_ROLE_WEB_IPS"] = "z"
	h5, _ := StepHash(top, s, facts)
	assert.NotEqual(t, h4, h5)
	// env is an input too.
	a, _ := StepHash(top, topology.Step{Inline: "x", Env: map[string]string{"A": "1"}}, facts)
	b, _ := StepHash(top, topology.Step{Inline: "x", Env: map[string]string{"A": "2"}}, facts)
	assert.NotEqual(t, a, b)
}

func TestFacts(t *testing.T) {
	w := newWorld(t)
	w.write(t, "db.sh", "")
	w.write(t, "uses-web.sh", "")
	lab := w.lab(t, 2)
	f := Facts(lab, *lab.Node("web2"))
	assert.Equal(t, "pv", f["LAB_NAME"])
	assert.Equal(t, "web2", f["LAB_NODE"])
	assert.Equal(t, "web", f["LAB_ROLE"])
	assert.Equal(t, "2", f["LAB_INDEX"])
	assert.Equal(t, "10.84.0.32", f["LAB_IP"])
	assert.Equal(t, "pv.lab", f["LAB_DOMAIN"])
	assert.Equal(t, "web2.pv.lab", f["LAB_FQDN"])
	assert.Equal(t, "web1 web2", f["LAB_ROLE_WEB_NODES"])
	assert.Equal(t, "10.84.0.31 10.84.0.32", f["LAB_ROLE_WEB_IPS"])
	assert.Equal(t, "db1", f["LAB_ROLE_DB_NODES"])
	assert.Equal(t, "10.84.0.1", f["LAB_HOST_IP"])
	six := lab.Network(lab.Nodes[0].Interfaces[0].Network).Subnet6.Addr().String()
	assert.Equal(t, six+"32", f["LAB_IP6"], "the IPv6 address has the IPv4 host number's digits")
	assert.Equal(t, six+"31 "+six+"32", f["LAB_ROLE_WEB_IPS6"])
	assert.Equal(t, six+"1", f["LAB_HOST_IP6"])
	assert.Equal(t, six+"/64", f["LAB_SUBNET6"])
	// On a network a provider makes (an LXD cluster's), the host is a
	// station at the subnet's last address, not the gateway.
	lab.Networks[0].ProviderMade = true
	f = Facts(lab, *lab.Node("web2"))
	assert.Equal(t, "10.84.0.254", f["LAB_HOST_IP"])
	assert.Equal(t, six+"254", f["LAB_HOST_IP6"])
	lab.Networks[0].ProviderMade = false
	hf := HostFacts(lab)
	assert.Equal(t, six+"32", hf["LAB_NODE_WEB2_IP6"])
	assert.NotContains(t, hf, "LAB_IP6")
	assert.Equal(t, "NGINX_LB", RoleKey("nginx-lb"))

	var doc struct {
		Node  string
		Index int
		IP6   string
		Roles map[string]struct{ Nodes, IPs, IPs6 []string }
	}
	require.NoError(t, json.Unmarshal([]byte(FactsJSON(lab, *lab.Node("web2"))), &doc))
	assert.Equal(t, "web2", doc.Node)
	assert.Equal(t, 2, doc.Index)
	assert.Equal(t, []string{"10.84.0.31", "10.84.0.32"}, doc.Roles["web"].IPs)
	assert.Equal(t, []string{six + "31", six + "32"}, doc.Roles["web"].IPs6)
	assert.Equal(t, six+"32", doc.IP6)
	assert.Contains(t, FactsEnvFile(lab, *lab.Node("web2")), "LAB_ROLE_WEB_NODES='web1 web2'\n")
}

func TestHealthRetriesThenTimesOut(t *testing.T) {
	w := newWorld(t)
	w.write(t, "db.sh", "")
	w.write(t, "uses-web.sh", "")
	lab := w.lab(t, 1)
	n := *lab.Node("web1")
	n.Spec = &topology.Role{Role: "web", Health: []topology.Check{{TCP: 5432}, {Command: "true"}}}
	calls := 0
	w.p.ExecFunc = func(_ string, cmd []string, eio providers.ExecIO) (int, error) {
		calls++
		if strings.Contains(strings.Join(cmd, " "), "5432") && calls < 5 {
			fmt.Fprint(eio.Stderr, "connection refused")
			return 1, nil
		}
		return 0, nil
	}
	r := &Runner{HealthPoll: 10 * time.Millisecond}
	req := Request{Lab: lab, Node: n, Target: providers.Node{Name: "web1"}, Provider: w.p}
	require.NoError(t, r.Health(context.Background(), req, 5*time.Second))
	assert.GreaterOrEqual(t, calls, 5)

	w.p.ExecFunc = func(string, []string, providers.ExecIO) (int, error) { return 1, nil }
	err := r.Health(context.Background(), req, 50*time.Millisecond)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "node web1: unhealthy after 50ms")
	assert.Contains(t, err.Error(), "health[0] (tcp 5432): exit 1")
}

func TestCheckCommands(t *testing.T) {
	c := CheckCommand(topology.Check{HTTP: "http://localhost:8080/api/ready?x=1", Status: 200})
	assert.Equal(t, "/bin/bash", c[0])
	assert.Contains(t, c[2], "/dev/tcp/localhost/8080")
	assert.Contains(t, c[2], "GET /api/ready?x=1 HTTP/1.0")
	assert.Contains(t, CheckCommand(topology.Check{TCP: 22})[2], "/dev/tcp/127.0.0.1/22")
	assert.Contains(t, CheckCommand(topology.Check{HTTP: "https://x/", Status: 204})[2], "curl")
	assert.Equal(t, "step 3 (inline: echo hi)", Label(2, topology.Step{Inline: "echo hi\nmore"}))
}
