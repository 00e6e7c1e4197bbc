// Package engine turns a topology into a running lab and back: it plans
// against the state, makes networks and images, and runs nodes through
// create → start → files → provision → health as a graph (roles ordered by
// `after`, nodes of a role in parallel, bounded workers), saving the state
// after every step so that an interrupted run can always be resumed or
// destroyed.
package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/labctl/lab/image"
	"github.com/labctl/lab/network"
	"github.com/labctl/lab/plan"
	"github.com/labctl/lab/providers"
	"github.com/labctl/lab/state"
	"github.com/labctl/lab/topology"
)

// Images builds or finds node images.
type Images interface {
	Ensure(ctx context.Context, spec image.Spec) (*image.Image, error)
}

// Networks makes lab networks on the host.
type Networks interface {
	Ensure(ctx context.Context, lab string, n network.Net) error
	SetHosts(bridge, lines string) error
	Remove(ctx context.Context, lab, bridge string) error
	CheckFree(ctx context.Context, subnet netip.Prefix, bridge string) error
	// Preflight says why a network cannot be made, changing nothing.
	Preflight(ctx context.Context, lab string, n network.Net) error
}

// ProvisionRequest is everything a provisioner needs for one node.
type ProvisionRequest struct {
	Lab       *topology.Lab
	Node      topology.Node
	Target    providers.Node
	Provider  providers.Provider
	Previous  *state.Provisioning // nil when never provisioned
	Force     bool                // run every step, whatever the record says
	Inventory string              // the lab's Ansible inventory (.lab/inventory.ini)
	Log       io.Writer           // the node's log file
	Progress  func(msg string)
}

// Provisioner runs a node's provisioning steps and health checks.
type Provisioner interface {
	Provision(ctx context.Context, r ProvisionRequest) (*state.Provisioning, error)
	Health(ctx context.Context, r ProvisionRequest, timeout time.Duration) error
	// Files returns extra files every node gets (facts), path → content.
	Files(lab *topology.Lab, n topology.Node) map[string]string
	// HostFiles returns files kept in .lab (inventories, ssh config), name → content.
	HostFiles(lab *topology.Lab, key string) map[string]string
}

// Engine runs lab commands for one lab folder.
type Engine struct {
	Store       *state.Store
	Provider    func(name string) (providers.Provider, error)
	Images      Images
	Networks    Networks
	Provisioner Provisioner
	Events      Sink
	Mirror      string
	Workers     int
	// LockWait makes a busy lab wait this long for the lock instead of failing at once.
	LockWait time.Duration

	start time.Time
	lab   string
	mu    sync.Mutex // guards state writes
}

func (e *Engine) emit(node, phase, format string, args ...any) {
	if e.Events == nil {
		return
	}
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	ev := Event{Time: time.Now(), Lab: e.lab, Node: node, Phase: phase, Message: msg, Elapsed: time.Since(e.start).Seconds()}
	if phase == PhaseFailed {
		ev.Error, ev.Message = msg, ""
	}
	e.Events.Emit(ev)
}

func (e *Engine) lock(ctx context.Context) error {
	if err := e.Store.Lock(ctx, e.LockWait > 0, e.LockWait); err != nil {
		return err
	}
	if pid := e.Store.Recovered; pid > 0 {
		e.emit("", PhaseLock, "recovered the lock of process %d, which ended without releasing it", pid)
	}
	return nil
}

func (e *Engine) begin(lab string) {
	e.start = time.Now()
	e.lab = lab
}

// open starts a command that changes the lab: it takes the lock and loads
// the state. The caller unlocks.
func (e *Engine) open(ctx context.Context, top *topology.Topology) (*state.State, error) {
	e.begin(top.Name)
	if err := e.lock(ctx); err != nil {
		return nil, err
	}
	st, err := e.load(top)
	if err != nil {
		e.Store.Unlock()
		return nil, err
	}
	return st, nil
}

// load returns the lab's state, or a new one.
func (e *Engine) load(top *topology.Topology) (*state.State, error) {
	st, err := e.Store.Load()
	if err != nil {
		return nil, err
	}
	if st == nil {
		return state.New(top.Name, top.File), nil
	}
	if st.Lab != top.Name && !st.Empty() {
		return nil, fmt.Errorf("%s holds lab %q, but %s names %q: run lab destroy with the old file first, or use another folder", e.Store.Dir, st.Lab, top.File, top.Name)
	}
	st.Lab, st.File = top.Name, top.File
	return st, nil
}

func (e *Engine) save(st *state.State) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.Store.Save(st)
}

// update changes the state under the lock and saves it.
func (e *Engine) update(st *state.State, f func()) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	f()
	return e.Store.Save(st)
}

// Expand expands the topology with the subnets the state recorded, choosing
// a free one for each new network that names none.
func (e *Engine) Expand(ctx context.Context, top *topology.Topology, st *state.State) (*topology.Lab, error) {
	subnets := map[string]netip.Prefix{}
	if st != nil {
		for name, n := range st.Networks {
			p, err := topology.ParseSubnet(n.Subnet)
			if err != nil {
				return nil, fmt.Errorf("%s: network %s: subnet %v (the state is damaged: lab destroy --name %s removes what the lab made without it)", e.Store.Dir, name, err, st.Lab)
			}
			subnets[name] = p
		}
	}
	var taken []netip.Prefix
	for _, n := range top.Networks {
		if n.Subnet != "" {
			taken = append(taken, netip.MustParsePrefix(n.Subnet))
		} else if p, ok := subnets[n.Name]; ok {
			taken = append(taken, p)
		}
	}
	for i, n := range top.Networks {
		if n.Subnet != "" {
			continue
		}
		if _, ok := subnets[n.Name]; ok {
			continue
		}
		bridge := topology.BridgeName(top.Name, i)
		var lastErr error
		for attempt := 0; attempt < 64; attempt++ {
			cand := topology.AutoSubnet(top.Name, n.Name, attempt)
			clash := false
			for _, t := range taken {
				clash = clash || t.Overlaps(cand)
			}
			if clash {
				continue
			}
			if e.Networks != nil {
				if lastErr = e.Networks.CheckFree(ctx, cand, bridge); lastErr != nil {
					continue
				}
			}
			subnets[n.Name] = cand
			taken = append(taken, cand)
			break
		}
		if _, ok := subnets[n.Name]; !ok {
			return nil, fmt.Errorf("network %s: no free subnet found (last: %v); set networks[%d].subnet", n.Name, lastErr, i)
		}
	}
	return topology.Expand(top, subnets)
}

func (e *Engine) provider(name string) (providers.Provider, error) {
	if e.Provider == nil {
		return nil, fmt.Errorf("no provider %q", name)
	}
	return e.Provider(name)
}

// ContainerID is the provider's name for a lab's node: LAB_NODE. Lab and
// node names hold no '_', so no two labs' nodes share an id (with '-', lab
// adv-a's node b1 and lab adv's node a-b1 would both be adv-a-b1).
func ContainerID(lab, node string) string { return lab + "_" + node }

// imageSpec is the image a node is made from.
func (e *Engine) imageSpec(n topology.Node, p providers.Provider) image.Spec {
	pk := append([]string{}, n.Packages...)
	if ip, ok := p.(providers.ImagePackager); ok {
		pk = append(pk, ip.ImagePackages()...)
	}
	return image.Spec{Suite: image.SuiteOf(n.Image), Mirror: e.Mirror, Packages: pk}.Normalize()
}

func (e *Engine) target(lab *topology.Lab, n topology.Node, img *image.Image) providers.Node {
	t := providers.Node{Lab: lab.Name, Name: n.Name, ID: ContainerID(lab.Name, n.Name), CPUs: n.CPUs, Memory: n.Memory, Accel: n.Accel, Owner: e.owner()}
	for _, ifc := range n.Interfaces {
		t.Interfaces = append(t.Interfaces, providers.Interface{Bridge: ifc.Bridge, Addr: netip.PrefixFrom(ifc.Addr, ifc.Subnet.Bits())})
	}
	if img != nil {
		t.Image = providers.Image{Key: img.Key, RootFS: img.RootFS}
	}
	return t
}

// recordTarget is a recorded node, as its provider knows it.
func (e *Engine) recordTarget(st *state.State, rec *state.Node) providers.Node {
	return providers.Node{Lab: st.Lab, Name: rec.Name, ID: rec.ID, Owner: e.owner()}
}

// owner is the lab's state folder, as providers record it with each node.
func (e *Engine) owner() string {
	if abs, err := filepath.Abs(e.Store.Dir); err == nil {
		return abs
	}
	return e.Store.Dir
}

// observe asks providers for the state of every recorded node.
func (e *Engine) observe(ctx context.Context, st *state.State) plan.Observed {
	obs := plan.Observed{}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, rec := range st.Nodes {
		rec := rec
		g.Go(func() error {
			s := providers.Unknown
			if p, err := e.provider(rec.Provider); err == nil {
				if got, err := p.State(gctx, e.recordTarget(st, rec)); err == nil {
					s = got
				}
			}
			mu.Lock()
			obs[rec.Name] = s
			mu.Unlock()
			return nil
		})
	}
	_ = g.Wait()
	return obs
}

// imageKeys computes the image key each node would be made from now.
func (e *Engine) imageKeys(lab *topology.Lab) map[string]string {
	keys := map[string]string{}
	for _, n := range lab.Nodes {
		if p, err := e.provider(n.Provider); err == nil {
			keys[n.Name] = e.imageSpec(n, p).Key()
		}
	}
	return keys
}

// Plan says what Up would do, without changing anything.
func (e *Engine) Plan(ctx context.Context, top *topology.Topology) (*plan.Plan, *topology.Lab, error) {
	st, err := e.load(top)
	if err != nil {
		return nil, nil, err
	}
	lab, err := e.Expand(ctx, top, st)
	if err != nil {
		return nil, nil, err
	}
	// What up would refuse, plan refuses too.
	if err := e.checkPorts(lab, st); err != nil {
		return nil, nil, err
	}
	if e.Networks != nil {
		for _, n := range lab.Networks {
			if err := e.Networks.Preflight(ctx, lab.Name, network.Net{Bridge: n.Bridge, Subnet: n.Subnet, Gateway: n.Gateway, Domain: n.Domain}); err != nil {
				return nil, nil, err
			}
		}
	}
	return plan.Diff(lab, st, e.observe(ctx, st), e.imageKeys(lab)), lab, nil
}

// UpOptions tune Up.
type UpOptions struct {
	Provision bool // run every provisioning step again
}

// UnknownNodeError is a node name the lab does not have: the user's
// mistake (exit 2), not a failed operation.
type UnknownNodeError struct{ msg string }

func (e *UnknownNodeError) Error() string { return e.msg }

// NodeError is one node's failure.
type NodeError struct {
	Node string
	Err  error
}

// UpError lists what failed and what was left undone.
type UpError struct {
	Failed  []NodeError
	Skipped []string
}

func (e *UpError) Error() string {
	var b strings.Builder
	for i, f := range e.Failed {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(f.Err.Error())
	}
	if len(e.Skipped) > 0 {
		fmt.Fprintf(&b, "\nnot provisioned because something they come after failed: %s", strings.Join(e.Skipped, ", "))
	}
	return b.String()
}

// Up brings the lab to what the topology says.
func (e *Engine) Up(ctx context.Context, top *topology.Topology, opts UpOptions) (*plan.Plan, error) {
	st, err := e.open(ctx, top)
	if err != nil {
		return nil, err
	}
	defer e.Store.Unlock()
	lab, err := e.Expand(ctx, top, st)
	if err != nil {
		return nil, err
	}
	p := plan.Diff(lab, st, e.observe(ctx, st), e.imageKeys(lab))
	if _, err := e.ensureKey(ctx, top); err != nil {
		return p, err
	}
	if err := e.writeHostFiles(lab); err != nil {
		return p, err
	}
	e.emit("", PhasePlan, "%d nodes: %d to create, %d to start, %d to destroy", len(lab.Nodes), len(p.Nodes(plan.Create, plan.Replace)), len(p.Nodes(plan.Start)), len(p.Nodes(plan.Destroy, plan.Replace)))

	if err := e.checkPorts(lab, st); err != nil {
		return p, err
	}
	if err := e.upNetworks(ctx, lab, st); err != nil {
		return p, err
	}
	if err := e.destroyNodes(ctx, st, p.Nodes(plan.Destroy, plan.Replace)); err != nil {
		return p, err
	}
	images, err := e.buildImages(ctx, lab, p)
	if err != nil {
		return p, err
	}
	err = e.runNodes(ctx, lab, st, p, images, opts)
	if ctx.Err() != nil {
		return p, err
	}
	// Forwards go to nodes that run, even when some others failed.
	if ferr := e.syncForwards(lab, st); ferr != nil && err == nil {
		err = ferr
	}
	return p, err
}

func (e *Engine) upNetworks(ctx context.Context, lab *topology.Lab, st *state.State) error {
	for _, n := range lab.Networks {
		if _, ok := st.Networks[n.Name]; !ok {
			// Recorded before it is made, so destroy finds a half-made network.
			if err := e.update(st, func() {
				st.Networks[n.Name] = &state.Network{Name: n.Name, Bridge: n.Bridge, Subnet: n.Subnet.String(), Domain: n.Domain, CreatedAt: time.Now().UTC()}
			}); err != nil {
				return err
			}
		}
		if e.Networks == nil {
			continue
		}
		t := time.Now()
		if err := e.Networks.Ensure(ctx, lab.Name, network.Net{Bridge: n.Bridge, Subnet: n.Subnet, Gateway: n.Gateway, Domain: n.Domain}); err != nil {
			e.emit("", PhaseFailed, "network %s: %v", n.Name, err)
			return err
		}
		var hosts strings.Builder
		for _, node := range lab.Nodes {
			for _, ifc := range node.Interfaces {
				if ifc.Network == n.Name {
					fmt.Fprintf(&hosts, "%s %s\n", ifc.Addr, node.Name)
				}
			}
		}
		if err := e.Networks.SetHosts(n.Bridge, hosts.String()); err != nil {
			return fmt.Errorf("network %s: dns names: %w", n.Name, err)
		}
		e.emit("", PhaseNetwork, "%s %s on %s, DNS *.%s (%.2fs)", n.Name, n.Subnet, n.Bridge, n.Domain, time.Since(t).Seconds())
	}
	// Networks the topology no longer has.
	for name, rec := range st.Networks {
		if lab.Network(name) != nil {
			continue
		}
		if e.Networks != nil {
			if err := e.Networks.Remove(ctx, lab.Name, rec.Bridge); err != nil {
				return err
			}
		}
		if err := e.update(st, func() { delete(st.Networks, name) }); err != nil {
			return err
		}
		e.emit("", PhaseNetwork, "removed %s (%s)", name, rec.Bridge)
	}
	return nil
}

// destroyNodes removes recorded nodes in parallel.
func (e *Engine) destroyNodes(ctx context.Context, st *state.State, names []string) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(e.workers())
	for _, name := range names {
		rec := st.Nodes[name]
		if rec == nil {
			continue
		}
		g.Go(func() error {
			t := time.Now()
			p, err := e.provider(rec.Provider)
			if err != nil {
				return fmt.Errorf("node %s: %w", rec.Name, err)
			}
			if err := p.Destroy(gctx, e.recordTarget(st, rec)); err != nil {
				e.emit(rec.Name, PhaseFailed, "%v", err)
				return err
			}
			_ = os.Remove(filepath.Join(e.Store.LogDir(), rec.Name+".log"))
			e.emit(rec.Name, PhaseDestroy, "destroyed (%.2fs)", time.Since(t).Seconds())
			return e.update(st, func() { delete(st.Nodes, rec.Name) })
		})
	}
	return g.Wait()
}

func (e *Engine) workers() int {
	if e.Workers > 0 {
		return e.Workers
	}
	return 8
}

// buildImages makes sure every image a node to create needs is built, two
// builds at a time (bootstrapping is dpkg-bound).
func (e *Engine) buildImages(ctx context.Context, lab *topology.Lab, p *plan.Plan) (map[string]*image.Image, error) {
	need := map[string]bool{}
	for _, name := range p.Nodes(plan.Create, plan.Replace, plan.Start) {
		need[name] = true
	}
	specs := map[string]image.Spec{}
	nodeKey := map[string]string{}
	for _, n := range lab.Nodes {
		if !need[n.Name] {
			continue
		}
		prov, err := e.provider(n.Provider)
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", n.Name, err)
		}
		spec := e.imageSpec(n, prov)
		specs[spec.Key()] = spec
		nodeKey[n.Name] = spec.Key()
	}
	built := map[string]*image.Image{}
	if e.Images == nil || len(specs) == 0 {
		return map[string]*image.Image{}, nil
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(2)
	keys := make([]string, 0, len(specs))
	for k := range specs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		spec := specs[k]
		g.Go(func() error {
			t := time.Now()
			img, err := e.Images.Ensure(gctx, spec)
			if err != nil {
				e.emit("", PhaseFailed, "image %s: %v", k, err)
				return err
			}
			if time.Since(t) > time.Second {
				e.emit("", PhaseImage, "%s built (%s) in %.1fs", k, strings.Join(spec.Packages, " "), time.Since(t).Seconds())
			}
			mu.Lock()
			built[k] = img
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := map[string]*image.Image{}
	for node, k := range nodeKey {
		out[node] = built[k]
	}
	return out, nil
}

// runNodes is the graph: node:X (create, start, files) then provision:X
// after node:X and the provisioning of every node of X's `after` roles.
func (e *Engine) runNodes(ctx context.Context, lab *topology.Lab, st *state.State, p *plan.Plan, images map[string]*image.Image, opts UpOptions) error {
	actions := map[string]plan.Action{}
	for _, s := range p.Steps {
		actions[s.Node] = s.Action
	}
	boot, health := lab.Topology.Timeouts()
	if err := os.MkdirAll(e.Store.LogDir(), 0o755); err != nil {
		return err
	}
	var tasks []Task
	for _, n := range lab.Nodes {
		n := n
		prov, err := e.provider(n.Provider)
		if err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
		tasks = append(tasks, Task{ID: "node:" + n.Name, Run: func(ctx context.Context) error {
			return e.bootNode(ctx, lab, st, n, prov, actions[n.Name], images[n.Name], boot)
		}})
		deps := []string{"node:" + n.Name}
		for _, after := range n.Spec.After {
			for _, m := range lab.RoleNodes(after) {
				deps = append(deps, "provision:"+m.Name)
			}
		}
		tasks = append(tasks, Task{ID: "provision:" + n.Name, Deps: deps, Run: func(ctx context.Context) error {
			return e.provisionNode(ctx, lab, st, n, prov, opts.Provision, health)
		}})
	}
	results, err := RunGraph(ctx, tasks, e.workers())
	if err != nil {
		return err
	}
	ue := &UpError{}
	for _, n := range lab.Nodes {
		for _, id := range []string{"node:" + n.Name, "provision:" + n.Name} {
			err := results[id]
			switch {
			case err == nil:
			case errors.Is(err, ErrSkipped):
				if strings.HasPrefix(id, "provision:") && results["node:"+n.Name] == nil {
					ue.Skipped = append(ue.Skipped, n.Name)
					e.emit(n.Name, PhaseSkipped, "%v", err)
				}
			default:
				ue.Failed = append(ue.Failed, NodeError{Node: n.Name, Err: err})
			}
		}
	}
	if ctx.Err() != nil {
		var half []string
		for _, name := range st.NodeNames() {
			if rec := st.Nodes[name]; rec.Phase == state.PhaseCreating || rec.Provision == nil || !rec.Provision.Done {
				half = append(half, name)
			}
		}
		return fmt.Errorf("interrupted; state saved; not finished: %s (lab up resumes, lab destroy removes): %w", strings.Join(half, ", "), ctx.Err())
	}
	if len(ue.Failed) > 0 || len(ue.Skipped) > 0 {
		return ue
	}
	return nil
}

func (e *Engine) logFile(node string) (*os.File, error) {
	return os.OpenFile(filepath.Join(e.Store.LogDir(), node+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
}

// LogPath is where a node's full log is kept.
func (e *Engine) LogPath(node string) string {
	return filepath.Join(e.Store.LogDir(), node+".log")
}

func (e *Engine) bootNode(ctx context.Context, lab *topology.Lab, st *state.State, n topology.Node, prov providers.Provider, action plan.Action, img *image.Image, bootTimeout time.Duration) error {
	t := time.Now()
	tgt := e.target(lab, n, img)
	switch action {
	case plan.Create, plan.Replace, plan.Start:
		if img == nil && e.Images != nil {
			return fmt.Errorf("node %s: no image", n.Name)
		}
		if action != plan.Start {
			var addrs []string
			for _, ifc := range n.Interfaces {
				addrs = append(addrs, ifc.Addr.String())
			}
			key := ""
			if img != nil {
				key = img.Key
			}
			if err := e.update(st, func() {
				st.Nodes[n.Name] = &state.Node{Name: n.Name, Role: n.Role, Index: n.Index, Provider: prov.Name(), ID: tgt.ID,
					Image: key, Addresses: addrs, Phase: state.PhaseCreating, CreatedAt: time.Now().UTC()}
			}); err != nil {
				return err
			}
			e.emit(n.Name, PhaseCreate, "%s %s", n.IP(), tgt.ID)
			if err := prov.Create(ctx, tgt); err != nil {
				e.emit(n.Name, PhaseFailed, "%v", err)
				return err
			}
			if err := e.update(st, func() { st.Nodes[n.Name].Phase = state.PhaseCreated }); err != nil {
				return err
			}
		}
		e.emit(n.Name, PhaseStart, "")
		bctx, cancel := context.WithTimeout(ctx, bootTimeout)
		err := prov.Start(bctx, tgt)
		timedOut := errors.Is(bctx.Err(), context.DeadlineExceeded)
		cancel()
		if err != nil {
			if ctx.Err() == nil && timedOut {
				err = fmt.Errorf("node %s: not up after %s (defaults.boot_timeout): %w", n.Name, bootTimeout, err)
			}
			e.emit(n.Name, PhaseFailed, "%v", err)
			return err
		}
		if err := e.update(st, func() { st.Nodes[n.Name].Phase = state.PhaseRunning }); err != nil {
			return err
		}
		e.emit(n.Name, PhaseReady, "booted in %.2fs", time.Since(t).Seconds())
	}
	if err := e.writeFiles(ctx, lab, n, prov, tgt); err != nil {
		e.emit(n.Name, PhaseFailed, "%v", err)
		return err
	}
	return nil
}

// writeFiles gives a node the lab's names, its DNS server and facts, in one
// exec: /etc/hosts lists every node, resolv.conf points at the bridge.
func (e *Engine) writeFiles(ctx context.Context, lab *topology.Lab, n topology.Node, prov providers.Provider, tgt providers.Node) error {
	files := map[string]string{"/etc/hosts": lab.Hosts(), "/etc/hostname": n.Name + "\n"}
	if len(n.Interfaces) > 0 {
		net := lab.Network(n.Interfaces[0].Network)
		files["/etc/resolv.conf"] = fmt.Sprintf("# lab: the DNS of bridge %s\nnameserver %s\nsearch %s\noptions ndots:1 timeout:1\n", net.Bridge, net.Gateway, net.Domain)
	}
	if e.Provisioner != nil {
		for k, v := range e.Provisioner.Files(lab, n) {
			files[k] = v
		}
	}
	sshFiles, extra, err := e.sshFiles(n)
	if err != nil {
		return err
	}
	for k, v := range sshFiles {
		files[k] = v
	}
	if fw, ok := prov.(providers.FileWriter); ok {
		if err := fw.WriteFiles(ctx, tgt, files, extra); err != nil {
			return fmt.Errorf("node %s: write lab files: %w", n.Name, err)
		}
		return nil
	}
	script := WriteFilesScript(files) + extra
	var stderr strings.Builder
	code, err := prov.Exec(ctx, tgt, []string{"/bin/sh", "-s"}, providers.ExecIO{Stdin: strings.NewReader(script), Stderr: &stderr})
	if err != nil {
		return fmt.Errorf("node %s: write lab files: %w", n.Name, err)
	}
	if code != 0 {
		return fmt.Errorf("node %s: write lab files: exit %d: %s", n.Name, code, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// WriteFilesScript is a shell script that writes each file atomically,
// touching only files whose content changed.
func WriteFilesScript(files map[string]string) string {
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var b strings.Builder
	b.WriteString("set -e\n")
	for i, p := range paths {
		content := files[p]
		delim := fmt.Sprintf("LAB_EOF_%d", i)
		for strings.Contains(content, delim) {
			delim += "_"
		}
		q := "'" + strings.ReplaceAll(p, "'", `'\''`) + "'"
		fmt.Fprintf(&b, "mkdir -p \"$(dirname %[1]s)\"\ncat > %[1]s.lab-new <<'%[2]s'\n%[3]s%[2]s\n", q, delim, ensureNL(content))
		fmt.Fprintf(&b, "if cmp -s %[1]s.lab-new %[1]s; then rm -f %[1]s.lab-new; else chmod 0644 %[1]s.lab-new; mv -f %[1]s.lab-new %[1]s; fi\n", q)
	}
	b.WriteString("[ -x /usr/bin/hostname ] && hostname -F /etc/hostname 2>/dev/null || true\n")
	return b.String()
}

func ensureNL(s string) string {
	if s == "" || strings.HasSuffix(s, "\n") {
		return s
	}
	return s + "\n"
}

func (e *Engine) provisionNode(ctx context.Context, lab *topology.Lab, st *state.State, n topology.Node, prov providers.Provider, force bool, health time.Duration) error {
	e.mu.Lock()
	rec := st.Nodes[n.Name]
	var prev *state.Provisioning
	if rec != nil && rec.Provision != nil {
		cp := *rec.Provision
		cp.Steps = append([]state.StepRecord(nil), rec.Provision.Steps...)
		prev = &cp
	}
	e.mu.Unlock()
	if rec == nil {
		return fmt.Errorf("node %s: not in the state", n.Name)
	}
	if len(n.Spec.Provision) == 0 && len(n.Spec.Health) == 0 {
		return e.update(st, func() {
			st.Nodes[n.Name].Provision = &state.Provisioning{Done: true, Finished: time.Now().UTC()}
			e.emit(n.Name, PhaseDone, "up")
		})
	}
	if e.Provisioner == nil {
		return fmt.Errorf("node %s: provisioning is not available in this build", n.Name)
	}
	logf, err := e.logFile(n.Name)
	if err != nil {
		return err
	}
	defer logf.Close()
	req := ProvisionRequest{
		Lab: lab, Node: n, Target: e.target(lab, n, nil), Provider: prov, Previous: prev, Force: force, Log: logf,
		Inventory: filepath.Join(e.Store.Dir, "inventory.ini"),
		Progress:  func(msg string) { e.emit(n.Name, PhaseProvision, "%s", msg) },
	}
	t := time.Now()
	res, err := e.Provisioner.Provision(ctx, req)
	if res != nil {
		if uerr := e.update(st, func() { st.Nodes[n.Name].Provision = res }); uerr != nil && err == nil {
			err = uerr
		}
	}
	if err != nil {
		e.emit(n.Name, PhaseFailed, "%v", err)
		return err
	}
	if len(n.Spec.Health) > 0 {
		e.emit(n.Name, PhaseHealth, "%d checks", len(n.Spec.Health))
		if err := e.Provisioner.Health(ctx, req, health); err != nil {
			// Not done until healthy: the next up checks again.
			_ = e.update(st, func() {
				if p := st.Nodes[n.Name].Provision; p != nil {
					p.Done = false
				}
			})
			e.emit(n.Name, PhaseFailed, "%v", err)
			return err
		}
	}
	e.emit(n.Name, PhaseDone, "provisioned and healthy in %.1fs", time.Since(t).Seconds())
	return nil
}

// Halt stops every node of the lab and keeps them.
func (e *Engine) Halt(ctx context.Context, top *topology.Topology, nodes []string) error {
	st, err := e.open(ctx, top)
	if err != nil {
		return err
	}
	defer e.Store.Unlock()
	if len(nodes) == 0 {
		// Forwards go with a halted lab; lab up starts them again.
		if err := e.stopForwards(st); err != nil {
			return err
		}
	}
	want := map[string]bool{}
	for _, n := range nodes {
		if st.Nodes[n] == nil {
			return &UnknownNodeError{fmt.Sprintf("node %s: not in this lab (have: %s)", n, strings.Join(st.NodeNames(), ", "))}
		}
		want[n] = true
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(e.workers())
	for _, name := range st.NodeNames() {
		rec := st.Nodes[name]
		if len(want) > 0 && !want[name] {
			continue
		}
		g.Go(func() error {
			p, err := e.provider(rec.Provider)
			if err != nil {
				return err
			}
			t := time.Now()
			if err := p.Stop(gctx, e.recordTarget(st, rec)); err != nil {
				e.emit(rec.Name, PhaseFailed, "%v", err)
				return err
			}
			e.emit(rec.Name, PhaseStop, "halted (%.2fs)", time.Since(t).Seconds())
			return e.update(st, func() { rec.Phase = state.PhaseHalted })
		})
	}
	return g.Wait()
}

// Destroy removes every node and network the state records, then the state
// itself. It works from the state alone, so a broken lab file or a
// half-finished up never stops it.
func (e *Engine) Destroy(ctx context.Context, labName string) error {
	e.begin(labName)
	if err := e.lock(ctx); err != nil {
		return err
	}
	st, err := e.Store.Load()
	if err != nil {
		e.Store.Unlock()
		return err
	}
	if st != nil {
		e.lab = st.Lab
		if err := e.stopForwards(st); err != nil {
			e.Store.Unlock()
			return err
		}
		if err := e.destroyNodes(ctx, st, st.NodeNames()); err != nil {
			e.Store.Unlock()
			return err
		}
		for name, n := range st.Networks {
			if e.Networks != nil {
				if err := e.Networks.Remove(ctx, st.Lab, n.Bridge); err != nil {
					e.Store.Unlock()
					return fmt.Errorf("network %s: %w", name, err)
				}
			}
			e.emit("", PhaseNetwork, "removed %s (%s)", name, n.Bridge)
			if err := e.update(st, func() { delete(st.Networks, name) }); err != nil {
				e.Store.Unlock()
				return err
			}
		}
	}
	if err := e.Store.RemoveAll(); err != nil {
		e.Store.Unlock()
		return err
	}
	e.Store.Unlock()
	// The last trace: the lock and the folder.
	_ = os.Remove(filepath.Join(e.Store.Dir, "lock"))
	_ = os.Remove(e.Store.Dir)
	return nil
}

// NodeStatus is one node as `lab status` shows it.
type NodeStatus struct {
	Name      string   `json:"name"`
	Role      string   `json:"role"`
	Provider  string   `json:"provider"`
	ID        string   `json:"id,omitempty"`
	State     string   `json:"state"`
	Addresses []string `json:"addresses"`
	FQDN      string   `json:"fqdn,omitempty"`
	// Provisioned: "done", "failed", "pending" or "" when not created.
	Provisioned string `json:"provisioned,omitempty"`
	Note        string `json:"note,omitempty"`
}

// Status reports every node of the topology and every recorded node.
func (e *Engine) Status(ctx context.Context, top *topology.Topology) ([]NodeStatus, *topology.Lab, error) {
	st, err := e.load(top)
	if err != nil {
		return nil, nil, err
	}
	lab, err := e.Expand(ctx, top, st)
	if err != nil {
		return nil, nil, err
	}
	obs := e.observe(ctx, st)
	var out []NodeStatus
	for _, n := range lab.Nodes {
		s := NodeStatus{Name: n.Name, Role: n.Role, Provider: n.Provider, State: "not created", FQDN: lab.FQDN(n)}
		for _, ifc := range n.Interfaces {
			s.Addresses = append(s.Addresses, ifc.Addr.String())
		}
		if rec := st.Nodes[n.Name]; rec != nil {
			s.ID, s.Provider = rec.ID, rec.Provider
			s.State = string(obs[n.Name])
			s.Provisioned = "pending"
			if rec.Provision != nil {
				if rec.Provision.Done {
					s.Provisioned = "done"
				} else {
					s.Provisioned = "failed"
				}
			}
			if rec.Phase == state.PhaseCreating {
				s.Note = "half-created: lab up finishes it"
			}
			if rec.Provider != n.Provider {
				s.Note = fmt.Sprintf("the lab file says %s: lab up replaces it", n.Provider)
			}
		}
		out = append(out, s)
	}
	for _, name := range st.NodeNames() {
		if lab.Node(name) != nil {
			continue
		}
		rec := st.Nodes[name]
		out = append(out, NodeStatus{Name: name, Role: rec.Role, Provider: rec.Provider, ID: rec.ID, State: string(obs[name]),
			Addresses: rec.Addresses, Note: "not in the lab file: lab up destroys it"})
	}
	return out, lab, nil
}

// Target returns the provider and target of a created node, for exec and ssh.
func (e *Engine) Target(ctx context.Context, top *topology.Topology, node string) (providers.Provider, providers.Node, *topology.Lab, error) {
	st, err := e.load(top)
	if err != nil {
		return nil, providers.Node{}, nil, err
	}
	lab, err := e.Expand(ctx, top, st)
	if err != nil {
		return nil, providers.Node{}, nil, err
	}
	rec := st.Nodes[node]
	if rec == nil {
		if lab.Node(node) != nil {
			return nil, providers.Node{}, nil, fmt.Errorf("node %s is not created yet: run lab up", node)
		}
		var names []string
		for _, n := range lab.Nodes {
			names = append(names, n.Name)
		}
		return nil, providers.Node{}, nil, &UnknownNodeError{fmt.Sprintf("no node %q in lab %s (nodes: %s)", node, lab.Name, strings.Join(names, ", "))}
	}
	p, err := e.provider(rec.Provider)
	if err != nil {
		return nil, providers.Node{}, nil, err
	}
	t := e.recordTarget(st, rec)
	t.Lab = lab.Name
	if n := lab.Node(node); n != nil {
		t = e.target(lab, *n, nil)
		t.ID = rec.ID
	}
	return p, t, lab, nil
}

// ImageSpecs returns the distinct images a topology's nodes need.
func (e *Engine) ImageSpecs(top *topology.Topology) ([]image.Spec, error) {
	lab, err := topology.Expand(top, nil)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []image.Spec
	for _, n := range lab.Nodes {
		p, err := e.provider(n.Provider)
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", n.Name, err)
		}
		s := e.imageSpec(n, p)
		if !seen[s.Key()] {
			seen[s.Key()] = true
			out = append(out, s)
		}
	}
	return out, nil
}

// Reprovision runs every provisioning step again on the named nodes, the
// nodes of one role, or (neither given) every node, in `after` order.
func (e *Engine) Reprovision(ctx context.Context, top *topology.Topology, nodes []string, role string) error {
	st, err := e.open(ctx, top)
	if err != nil {
		return err
	}
	defer e.Store.Unlock()
	lab, err := e.Expand(ctx, top, st)
	if err != nil {
		return err
	}
	pick := map[string]bool{}
	for _, name := range nodes {
		if lab.Node(name) == nil {
			return &UnknownNodeError{fmt.Sprintf("no node %q in lab %s", name, lab.Name)}
		}
		pick[name] = true
	}
	_, health := top.Timeouts()
	var tasks []Task
	for _, n := range lab.Nodes {
		n := n
		if (len(pick) > 0 && !pick[n.Name]) || (role != "" && n.Role != role) {
			continue
		}
		if st.Nodes[n.Name] == nil {
			return fmt.Errorf("node %s is not created yet: run lab up", n.Name)
		}
		prov, err := e.provider(n.Provider)
		if err != nil {
			return err
		}
		tasks = append(tasks, Task{ID: n.Name, Run: func(ctx context.Context) error {
			if err := e.writeFiles(ctx, lab, n, prov, e.target(lab, n, nil)); err != nil {
				return err
			}
			return e.provisionNode(ctx, lab, st, n, prov, true, health)
		}})
	}
	ids := map[string]bool{}
	for _, t := range tasks {
		ids[t.ID] = true
	}
	for i := range tasks {
		n := lab.Node(tasks[i].ID)
		for _, after := range n.Spec.After {
			for _, m := range lab.RoleNodes(after) {
				if ids[m.Name] {
					tasks[i].Deps = append(tasks[i].Deps, m.Name)
				}
			}
		}
	}
	if err := os.MkdirAll(e.Store.LogDir(), 0o755); err != nil {
		return err
	}
	results, err := RunGraph(ctx, tasks, e.workers())
	if err != nil {
		return err
	}
	ue := &UpError{}
	for _, t := range tasks {
		if err := results[t.ID]; err != nil {
			if errors.Is(err, ErrSkipped) {
				ue.Skipped = append(ue.Skipped, t.ID)
			} else {
				ue.Failed = append(ue.Failed, NodeError{Node: t.ID, Err: err})
			}
		}
	}
	if len(ue.Failed)+len(ue.Skipped) > 0 {
		return ue
	}
	return nil
}
