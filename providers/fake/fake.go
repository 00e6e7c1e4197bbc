// Package fake is an in-memory provider for unit tests of planning and
// orchestration: it keeps node states, records every call in order, and can
// be told to fail or block on chosen calls.
package fake

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/labctl/lab/providers"
)

// Call is one recorded provider call.
type Call struct {
	Op   string
	Node string
	ID   string // the provider's id the call was made with
	Cmd  []string
	At   time.Time
}

// Provider is the fake. The zero value is not usable; use New.
type Provider struct {
	mu     sync.Mutex
	name   string
	nodes  map[string]providers.State
	files  map[string]map[string][]byte // node -> path -> content
	calls  []Call
	active int
	peak   int
	nets   map[string]string // bridge → names, when it owns networks

	// Fail makes an op on a node fail: key "op/node", such as "start/pg2".
	Fail map[string]error
	// Delay makes every op take this long (honouring ctx).
	Delay time.Duration
	// ExecFunc answers Exec; the default exits 0 with no output.
	ExecFunc func(node string, cmd []string, eio providers.ExecIO) (int, error)
	// Caps is what Info says.
	Caps providers.Info
	// StateDelay makes State take this long (honouring ctx): a node whose
	// machine does not answer.
	StateDelay time.Duration
	// Where places nodes on cluster members (Locate).
	Where map[string]providers.Location
}

// New returns an empty fake provider registered under no name.
func New(name string) *Provider {
	return &Provider{name: name, nodes: map[string]providers.State{}, files: map[string]map[string][]byte{}, Fail: map[string]error{}}
}

// Info: the fake says what it is told (Caps), for tests of code that asks.
func (p *Provider) Info() providers.Info { return p.Caps }

func (p *Provider) Name() string { return p.name }

func (p *Provider) begin(ctx context.Context, op string, n providers.Node, cmd []string) error {
	p.mu.Lock()
	p.calls = append(p.calls, Call{Op: op, Node: n.Name, ID: n.ID, Cmd: cmd, At: time.Now()})
	p.active++
	if p.active > p.peak {
		p.peak = p.active
	}
	err := p.Fail[op+"/"+n.Name]
	d := p.Delay
	p.mu.Unlock()
	if d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	if err == nil {
		err = ctx.Err()
	}
	return err
}

func (p *Provider) end() {
	p.mu.Lock()
	p.active--
	p.mu.Unlock()
}

func (p *Provider) set(n providers.Node, s providers.State) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s == providers.Absent {
		delete(p.nodes, n.Name)
		delete(p.files, n.Name)
		return
	}
	p.nodes[n.Name] = s
}

func (p *Provider) Create(ctx context.Context, n providers.Node) error {
	defer p.end()
	if err := p.begin(ctx, "create", n, nil); err != nil {
		return err
	}
	p.mu.Lock()
	_, exists := p.nodes[n.Name]
	p.mu.Unlock()
	if !exists {
		p.set(n, providers.Stopped)
	}
	return nil
}

func (p *Provider) Start(ctx context.Context, n providers.Node) error {
	defer p.end()
	if err := p.begin(ctx, "start", n, nil); err != nil {
		return err
	}
	if st, _ := p.State(ctx, n); st == providers.Absent {
		return fmt.Errorf("start %s: no such node", n.Name)
	}
	p.set(n, providers.Running)
	return nil
}

func (p *Provider) Stop(ctx context.Context, n providers.Node) error {
	defer p.end()
	if err := p.begin(ctx, "stop", n, nil); err != nil {
		return err
	}
	p.set(n, providers.Stopped)
	return nil
}

func (p *Provider) Destroy(ctx context.Context, n providers.Node) error {
	defer p.end()
	if err := p.begin(ctx, "destroy", n, nil); err != nil {
		return err
	}
	p.set(n, providers.Absent)
	return nil
}

func (p *Provider) State(ctx context.Context, n providers.Node) (providers.State, error) {
	p.mu.Lock()
	wait := p.StateDelay
	p.mu.Unlock()
	if wait > 0 {
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return providers.Unknown, ctx.Err()
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if s, ok := p.nodes[n.Name]; ok {
		return s, nil
	}
	return providers.Absent, nil
}

func (p *Provider) Exec(ctx context.Context, n providers.Node, cmd []string, eio providers.ExecIO) (int, error) {
	defer p.end()
	if err := p.begin(ctx, "exec", n, cmd); err != nil {
		return -1, err
	}
	if st, _ := p.State(ctx, n); st != providers.Running {
		return -1, fmt.Errorf("exec %s: node is %s", n.Name, st)
	}
	if p.ExecFunc != nil {
		return p.ExecFunc(n.Name, cmd, eio)
	}
	return 0, nil
}

func (p *Provider) CopyIn(ctx context.Context, n providers.Node, src io.Reader, dst string, _ fs.FileMode) error {
	defer p.end()
	if err := p.begin(ctx, "copyin", n, []string{dst}); err != nil {
		return err
	}
	var b bytes.Buffer
	if _, err := io.Copy(&b, src); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.files[n.Name] == nil {
		p.files[n.Name] = map[string][]byte{}
	}
	p.files[n.Name][dst] = b.Bytes()
	return nil
}

func (p *Provider) Shell(ctx context.Context, n providers.Node, cmd []string) error {
	return providers.ErrNotImplemented
}

// Calls returns the recorded calls, optionally only those of one op.
func (p *Provider) Calls(op string) []Call {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Call
	for _, c := range p.calls {
		if op == "" || c.Op == op {
			out = append(out, c)
		}
	}
	return out
}

// Nodes returns the nodes that exist and their states.
func (p *Provider) Nodes() map[string]providers.State {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]providers.State{}
	for k, v := range p.nodes {
		out[k] = v
	}
	return out
}

// File returns what CopyIn wrote to path in node.
func (p *Provider) File(node, path string) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b, ok := p.files[node][path]
	return string(b), ok
}

// Peak is the highest number of calls that were in flight at once.
func (p *Provider) Peak() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peak
}

// Pause freezes a running node.
func (p *Provider) Pause(ctx context.Context, n providers.Node) error {
	defer p.end()
	if err := p.begin(ctx, "pause", n, nil); err != nil {
		return err
	}
	p.set(n, providers.Paused)
	return nil
}

// Resume thaws it.
func (p *Provider) Resume(ctx context.Context, n providers.Node) error {
	defer p.end()
	if err := p.begin(ctx, "resume", n, nil); err != nil {
		return err
	}
	p.set(n, providers.Running)
	return nil
}

// Kill stops a node hard.
func (p *Provider) Kill(ctx context.Context, n providers.Node) error {
	defer p.end()
	if err := p.begin(ctx, "kill", n, nil); err != nil {
		return err
	}
	p.set(n, providers.Stopped)
	return nil
}

// SaveDisk writes the node's files (what CopyIn wrote) to dir as its disk.
func (p *Provider) SaveDisk(ctx context.Context, n providers.Node, dir string) error {
	defer p.end()
	if err := p.begin(ctx, "savedisk", n, []string{dir}); err != nil {
		return err
	}
	p.mu.Lock()
	b, err := json.Marshal(p.files[n.Name])
	p.mu.Unlock()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "disk.json"), b, 0o644)
}

// RestoreDisk gives the node the files SaveDisk wrote to dir.
func (p *Provider) RestoreDisk(ctx context.Context, n providers.Node, dir string) error {
	defer p.end()
	if err := p.begin(ctx, "restoredisk", n, []string{dir}); err != nil {
		return err
	}
	b, err := os.ReadFile(filepath.Join(dir, "disk.json"))
	if err != nil {
		return err
	}
	files := map[string][]byte{}
	if err := json.Unmarshal(b, &files); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.files[n.Name] = files
	return nil
}

// TakeDisk is RestoreDisk: the fake has nothing to move.
func (p *Provider) TakeDisk(ctx context.Context, n providers.Node, dir string) error {
	return p.RestoreDisk(ctx, n, dir)
}
