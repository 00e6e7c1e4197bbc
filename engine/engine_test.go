package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/labctl/lab/provision"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/labctl/lab/image"
	"github.com/labctl/lab/network"
	"github.com/labctl/lab/plan"
	"github.com/labctl/lab/providers"
	"github.com/labctl/lab/providers/fake"
	"github.com/labctl/lab/state"
	"github.com/labctl/lab/topology"
)

type fakeImages struct {
	mu    sync.Mutex
	built []string
}

func (f *fakeImages) Ensure(_ context.Context, spec image.Spec, log func(string)) (*image.Image, error) {
	if log != nil {
		log("building with fake: " + spec.Key())
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.built = append(f.built, spec.Key())
	return &image.Image{Key: spec.Key(), Spec: spec, RootFS: "/images/" + spec.Key()}, nil
}

type fakeNets struct {
	mu      sync.Mutex
	bridges map[string]bool
	hosts   map[string]string
	policy  *network.Policy
}

func (f *fakeNets) Ensure(_ context.Context, _ string, n network.Net) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bridges[n.Bridge] = true
	return nil
}
func (f *fakeNets) SetHosts(br, lines string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hosts[br] = lines
	return nil
}
func (f *fakeNets) Remove(_ context.Context, _, br string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.bridges, br)
	return nil
}
func (f *fakeNets) CheckFree(context.Context, netip.Prefix, string) error { return nil }
func (f *fakeNets) Preflight(context.Context, string, network.Net) error  { return nil }
func (f *fakeNets) ApplyPolicy(_ context.Context, p network.Policy) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.policy = &p
	return nil
}
func (f *fakeNets) RemoveLab(context.Context, string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.policy = nil
	return nil
}

// fakeProv records the order nodes were provisioned in.
type fakeProv struct {
	mu    sync.Mutex
	order []string
	fail  map[string]error
	delay time.Duration
	// started, when set, is closed when the first provisioning starts.
	started     chan struct{}
	startedOnce sync.Once
}

func (f *fakeProv) Provision(ctx context.Context, r provision.Request) (*state.Provisioning, error) {
	if f.started != nil {
		f.startedOnce.Do(func() { close(f.started) })
	}
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-ctx.Done():
			return &state.Provisioning{}, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail[r.Node.Name]; err != nil {
		return &state.Provisioning{Done: false}, fmt.Errorf("node %s: %w", r.Node.Name, err)
	}
	f.order = append(f.order, r.Node.Name)
	return &state.Provisioning{Done: true}, nil
}
func (f *fakeProv) Health(context.Context, provision.Request, time.Duration) error { return nil }
func (f *fakeProv) Files(*topology.Lab, topology.Node) map[string]string {
	return map[string]string{"/etc/lab/facts.json": "{}"}
}

func (f *fakeProv) HostFiles(*topology.Lab, string) map[string]string {
	return map[string]string{"inventory.ini": "[x]\n"}
}

func (f *fakeProv) pos(n string) int {
	for i, o := range f.order {
		if o == n {
			return i
		}
	}
	return -1
}

type rig struct {
	dir  string
	p    *fake.Provider
	imgs *fakeImages
	nets *fakeNets
	prov *fakeProv
	rec  *Recorder
}

func newRig(t *testing.T) *rig {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "s.sh"), []byte("#!/bin/sh\ntrue\n"), 0o755))
	return &rig{dir: dir, p: fake.New("lxc"), imgs: &fakeImages{}, nets: &fakeNets{bridges: map[string]bool{}, hosts: map[string]string{}},
		prov: &fakeProv{fail: map[string]error{}}, rec: &Recorder{}}
}

func (r *rig) engine() *Engine {
	return &Engine{
		Store:       state.Open(filepath.Join(r.dir, ".lab")),
		Provider:    func(string) (providers.Provider, error) { return r.p, nil },
		Images:      r.imgs,
		Networks:    r.nets,
		Provisioner: r.prov,
		Events:      r.rec,
		Workers:     4,
	}
}

func (r *rig) topo(t *testing.T, pg, web int) *topology.Topology {
	src := fmt.Sprintf(`name: e
networks: [{name: lan, subnet: 10.83.0.0/24}]
nodes:
  - {role: adm, provision: [{shell: s.sh}]}
  - {role: pg, count: %d, packages: [postgresql], provision: [{shell: s.sh}]}
  - {role: web, count: %d, after: [pg, adm], provision: [{shell: s.sh}]}
`, pg, web)
	top, err := topology.Parse([]byte(src), filepath.Join(r.dir, "lab.yaml"), r.dir)
	require.NoError(t, err)
	return top
}

func running(p *fake.Provider) []string {
	var out []string
	for n, s := range p.Nodes() {
		if s == providers.Running {
			out = append(out, n)
		}
	}
	return out
}

func TestUpFreshLab(t *testing.T) {
	r := newRig(t)
	scripts := struct {
		mu sync.Mutex
		m  map[string]string
	}{m: map[string]string{}}
	r.p.ExecFunc = func(node string, cmd []string, eio providers.ExecIO) (int, error) {
		if eio.Stdin != nil {
			b, _ := io.ReadAll(eio.Stdin)
			scripts.mu.Lock()
			scripts.m[node] += string(b)
			scripts.mu.Unlock()
		}
		return 0, nil
	}
	e := r.engine()
	p, err := e.Up(context.Background(), r.topo(t, 2, 2), UpOptions{})
	require.NoError(t, err)
	assert.Len(t, p.Nodes(plan.Create), 5)
	assert.ElementsMatch(t, []string{"adm1", "pg1", "pg2", "web1", "web2"}, running(r.p))

	// web comes after every pg and adm node.
	for _, w := range []string{"web1", "web2"} {
		for _, d := range []string{"pg1", "pg2", "adm1"} {
			assert.Less(t, r.prov.pos(d), r.prov.pos(w), "%s provisioned before %s", w, d)
		}
	}
	// Two images: one with postgresql, one without; built once each.
	assert.Len(t, r.imgs.built, 2)
	// Every node got the lab's hosts, resolv.conf and facts.
	scripts.mu.Lock()
	web2 := scripts.m["web2"]
	scripts.mu.Unlock()
	assert.Contains(t, web2, "10.83.0.31\tpg1.e.lab pg1\n")
	assert.Contains(t, web2, "nameserver 10.83.0.1\nsearch e.lab\n")
	assert.Contains(t, web2, "cat > '/etc/lab/facts.json'.lab-new")
	assert.Contains(t, web2, "web2\n")
	assert.Contains(t, r.nets.hosts["lab-e-0"], "10.83.0.31 pg1\n")
	assert.True(t, r.nets.bridges["lab-e-0"])

	st, err := e.Store.Load()
	require.NoError(t, err)
	require.Len(t, st.Nodes, 5)
	for _, n := range st.Nodes {
		assert.Equal(t, state.PhaseRunning, n.Phase)
		assert.True(t, n.Provision.Done)
		assert.Equal(t, "e_"+n.Name, n.ID)
	}
	assert.Equal(t, []string{PhaseCreate, PhaseStart, PhaseReady, PhaseDone}, r.rec.Phases("pg1"))

	// A second up changes nothing.
	creates := len(r.p.Calls("create"))
	p, err = e.Up(context.Background(), r.topo(t, 2, 2), UpOptions{})
	require.NoError(t, err)
	assert.False(t, p.Changes())
	assert.Equal(t, creates, len(r.p.Calls("create")))
}

func TestScaleUpAndDown(t *testing.T) {
	r := newRig(t)
	e := r.engine()
	_, err := e.Up(context.Background(), r.topo(t, 2, 1), UpOptions{})
	require.NoError(t, err)
	before := len(r.p.Calls("create"))

	_, err = e.Up(context.Background(), r.topo(t, 3, 2), UpOptions{})
	require.NoError(t, err)
	var created []string
	for _, c := range r.p.Calls("create")[before:] {
		created = append(created, c.Node)
	}
	assert.ElementsMatch(t, []string{"pg3", "web2"}, created)
	assert.Empty(t, r.p.Calls("destroy"))
	assert.Len(t, running(r.p), 6)

	_, err = e.Up(context.Background(), r.topo(t, 1, 2), UpOptions{})
	require.NoError(t, err)
	var destroyed []string
	for _, c := range r.p.Calls("destroy") {
		destroyed = append(destroyed, c.Node)
	}
	assert.ElementsMatch(t, []string{"pg3", "pg2"}, destroyed)
	assert.ElementsMatch(t, []string{"adm1", "pg1", "web1", "web2"}, running(r.p))
	assert.NotContains(t, r.nets.hosts["lab-e-0"], "pg2")
}

func TestFailedNodeDoesNotStopIndependentOnes(t *testing.T) {
	r := newRig(t)
	r.prov.fail["pg2"] = errors.New("step 1 (s.sh): exit 3")
	e := r.engine()
	_, err := e.Up(context.Background(), r.topo(t, 2, 2), UpOptions{})
	var ue *UpError
	require.ErrorAs(t, err, &ue)
	require.Len(t, ue.Failed, 1)
	assert.Equal(t, "pg2", ue.Failed[0].Node)
	assert.ElementsMatch(t, []string{"web1", "web2"}, ue.Skipped)
	assert.Contains(t, err.Error(), "exit 3")
	assert.ElementsMatch(t, []string{"adm1", "pg1"}, r.prov.order)

	// The next up resumes from what failed.
	delete(r.prov.fail, "pg2")
	p, err := e.Up(context.Background(), r.topo(t, 2, 2), UpOptions{})
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"pg2", "web1", "web2"}, p.Nodes(plan.Provision))
	assert.Empty(t, p.Nodes(plan.Create))
}

func TestBootFailureReported(t *testing.T) {
	r := newRig(t)
	r.p.Fail["start/pg1"] = errors.New("node pg1: start: no init")
	_, err := r.engine().Up(context.Background(), r.topo(t, 2, 1), UpOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no init")
	assert.Contains(t, err.Error(), "web1")
}

func TestInterruptedUpLeavesConsistentState(t *testing.T) {
	r := newRig(t)
	// Provisioning would take a minute: the interruption, once nodes are
	// made and provisioning has begun, ends it at once.
	r.prov.delay = time.Minute
	r.prov.started = make(chan struct{})
	e := r.engine()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-r.prov.started; cancel() }()
	start := time.Now()
	_, err := e.Up(ctx, r.topo(t, 2, 2), UpOptions{})
	require.Error(t, err)
	assert.Less(t, time.Since(start), 30*time.Second, "not the minute provisioning would take")
	assert.Contains(t, err.Error(), "interrupted")
	assert.Empty(t, r.prov.order, "no provisioning finished")

	st, err := e.Store.Load()
	require.NoError(t, err)
	assert.NotEmpty(t, st.Nodes)

	// Destroy after an interruption removes everything.
	require.NoError(t, e.Destroy(context.Background(), "e", false))
	assert.Empty(t, r.p.Nodes())
	assert.Empty(t, r.nets.bridges)
	_, err = os.Stat(filepath.Join(r.dir, ".lab"))
	assert.True(t, os.IsNotExist(err), ".lab left behind")
}

func TestDestroyAfterHalfCreate(t *testing.T) {
	r := newRig(t)
	r.p.Fail["create/pg2"] = errors.New("disk full")
	e := r.engine()
	_, err := e.Up(context.Background(), r.topo(t, 2, 1), UpOptions{})
	require.Error(t, err)
	st, _ := e.Store.Load()
	require.NotNil(t, st.Nodes["pg2"])
	assert.Equal(t, state.PhaseCreating, st.Nodes["pg2"].Phase)
	require.NoError(t, e.Destroy(context.Background(), "e", false))
	assert.Empty(t, r.p.Nodes())
	var destroyed []string
	for _, c := range r.p.Calls("destroy") {
		destroyed = append(destroyed, c.Node)
	}
	assert.Contains(t, destroyed, "pg2", "a half-created node must be destroyed too")
}

func TestHaltThenUpStarts(t *testing.T) {
	r := newRig(t)
	e := r.engine()
	top := r.topo(t, 1, 1)
	_, err := e.Up(context.Background(), top, UpOptions{})
	require.NoError(t, err)
	require.NoError(t, e.Halt(context.Background(), top, nil))
	assert.Empty(t, running(r.p))
	p, err := e.Up(context.Background(), top, UpOptions{})
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"adm1", "pg1", "web1"}, p.Nodes(plan.Start))
	assert.Len(t, running(r.p), 3)
}

func TestLockedLabFailsAtOnce(t *testing.T) {
	r := newRig(t)
	holder := r.engine()
	require.NoError(t, holder.Store.Lock(context.Background(), false, 0))
	defer holder.Store.Unlock()
	_, err := r.engine().Up(context.Background(), r.topo(t, 1, 1), UpOptions{})
	var le *state.LockedError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, os.Getpid(), le.PID)
}

func TestStatus(t *testing.T) {
	r := newRig(t)
	e := r.engine()
	_, err := e.Up(context.Background(), r.topo(t, 1, 1), UpOptions{})
	require.NoError(t, err)
	ns, _, err := e.Status(context.Background(), r.topo(t, 2, 1))
	require.NoError(t, err)
	byName := map[string]NodeStatus{}
	for _, s := range ns {
		byName[s.Name] = s
	}
	assert.Equal(t, "running", byName["pg1"].State)
	assert.Equal(t, "done", byName["pg1"].Provisioned)
	assert.Equal(t, "not created", byName["pg2"].State)
	assert.Equal(t, "pg1.e.lab", byName["pg1"].FQDN)
	assert.Equal(t, []string{"10.83.0.31"}, byName["pg1"].Addresses)

	// The recorded provider is what runs; the file's is a plan.
	st, err := e.Store.Load()
	require.NoError(t, err)
	st.Nodes["pg1"].Provider = "libvirt"
	require.NoError(t, e.Store.Save(st))
	ns, _, err = e.Status(context.Background(), r.topo(t, 1, 1))
	require.NoError(t, err)
	for _, s := range ns {
		if s.Name == "pg1" {
			assert.Equal(t, "libvirt", s.Provider)
			assert.Equal(t, "the lab file says lxc: lab up replaces it", s.Note)
		}
	}
}

// Every event, image builds' lines included, carries its time and lab
// (docs/json.md promises RFC 3339 times; image lines once had a zero time).
func TestEventsCarryTimeAndLab(t *testing.T) {
	r := newRig(t)
	_, err := r.engine().Up(context.Background(), r.topo(t, 1, 1), UpOptions{})
	require.NoError(t, err)
	images := 0
	for _, ev := range r.rec.Events {
		assert.False(t, ev.Time.IsZero(), "%+v", ev)
		assert.Equal(t, "e", ev.Lab, "%+v", ev)
		if ev.Phase == PhaseImage {
			images++
		}
	}
	assert.Equal(t, 2, images, "one line from each image build")
}

// A node made before ids were LAB_NODE keeps its recorded id: up and
// provision reach it under that id, not under today's.
func TestRecordedIDIsUsed(t *testing.T) {
	r := newRig(t)
	e := r.engine()
	_, err := e.Up(context.Background(), r.topo(t, 1, 1), UpOptions{})
	require.NoError(t, err)
	st, err := e.Store.Load()
	require.NoError(t, err)
	st.Nodes["web1"].ID = "e-web1"
	require.NoError(t, e.Store.Save(st))
	_, err = e.Up(context.Background(), r.topo(t, 1, 1), UpOptions{})
	require.NoError(t, err)
	require.NoError(t, e.Reprovision(context.Background(), r.topo(t, 1, 1), []string{"web1"}, ""))
	var ids []string
	for _, c := range r.p.Calls("exec") {
		if c.Node == "web1" {
			ids = append(ids, c.ID)
		}
	}
	require.GreaterOrEqual(t, len(ids), 2)
	assert.Equal(t, "e_web1", ids[0], "the first up made it as LAB_NODE")
	for _, id := range ids[1:] {
		assert.Equal(t, "e-web1", id)
	}
}

// A destroy saves the state in batches, not once per node: when one node
// cannot be destroyed, the state still holds exactly that node afterwards,
// and the others' records are gone.
func TestDestroyFailureKeepsOnlyTheFailedRecord(t *testing.T) {
	r := newRig(t)
	e := r.engine()
	_, err := e.Up(context.Background(), r.topo(t, 20, 20), UpOptions{})
	require.NoError(t, err)
	r.p.Fail["destroy/pg7"] = errors.New("device busy")
	require.Error(t, e.Destroy(context.Background(), "e", false))
	st, err := e.Store.Load()
	require.NoError(t, err)
	require.NotNil(t, st)
	assert.Contains(t, st.Nodes, "pg7")
	have := r.p.Nodes()
	for name := range st.Nodes {
		assert.Contains(t, have, name, "the state keeps %s, which is gone", name)
	}
	for name := range have {
		assert.Contains(t, st.Nodes, name, "the state lost %s, which is still there", name)
	}
	delete(r.p.Fail, "destroy/pg7")
	require.NoError(t, e.Destroy(context.Background(), "e", false))
	assert.Empty(t, r.p.Nodes())
}
