// Package state keeps what lab has made for one lab in .lab/ beside the lab
// file (like .vagrant/): networks, nodes with their provider ids and
// addresses, and provisioning records. It is written atomically after every
// step, and a lock keeps two commands from changing one lab at once.
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/labctl/lab/internal/fsx"
	"github.com/labctl/lab/internal/userns"
)

// Version is the state file's schema version.
const Version = 1

// State is the content of .lab/state.json.
type State struct {
	Version  int                 `json:"version"`
	Lab      string              `json:"lab"`
	File     string              `json:"file"`
	Networks map[string]*Network `json:"networks"`
	Nodes    map[string]*Node    `json:"nodes"`
	Forwards map[string]*Forward `json:"forwards,omitempty"`
	// Firewall is what each guarded node accepts, as applied (node → rules).
	Firewall map[string][]string `json:"firewall,omitempty"`
	// Faults in force, by id; NextFault numbers the next one.
	Faults    map[string]*Fault `json:"faults,omitempty"`
	NextFault int               `json:"next_fault,omitempty"`
}

// Fault is an impairment in force: a partition, a delay, a paused or
// killed node.
type Fault struct {
	ID      string            `json:"id"`
	Kind    string            `json:"kind"`    // partition, delay, pause, kill
	Targets []string          `json:"targets"` // as the user named them
	Nodes   []string          `json:"nodes"`   // the nodes it touches
	Params  map[string]string `json:"params,omitempty"`
	Since   time.Time         `json:"since"`
	PID     int               `json:"pid,omitempty"` // a delay line's process
}

// Forward is a running port forward (socat) from the host to a node.
type Forward struct {
	Address string `json:"address"`
	Host    int    `json:"host"`
	Node    string `json:"node"`
	Target  string `json:"target"`
	PID     int    `json:"pid"`
}

// Network is a lab network lab has made.
type Network struct {
	Name      string    `json:"name"`
	Bridge    string    `json:"bridge"`
	Subnet    string    `json:"subnet"`
	Domain    string    `json:"domain"`
	CreatedAt time.Time `json:"created_at"`
	// Provider made it (a provider that owns its nodes' network, such as
	// lxd); "": lab made it on this host.
	Provider string `json:"provider,omitempty"`
}

// Node is a node lab has made (or started to make).
type Node struct {
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	Index     int       `json:"index"`
	Provider  string    `json:"provider"`
	ID        string    `json:"id"`
	Image     string    `json:"image"`
	Addresses []string  `json:"addresses"`
	Phase     string    `json:"phase"` // creating, created, running, halted
	CreatedAt time.Time `json:"created_at"`
	// Restoring names the snapshot whose disk is being put back: set for
	// every node of a restore before the first is stopped, cleared when its
	// disk is back, so that an interrupted restore is finished, not lost.
	Restoring string `json:"restoring,omitempty"`
	// Unprivileged: the node was made in a user namespace (records made
	// before nodes could be are of privileged nodes).
	Unprivileged bool `json:"unprivileged,omitempty"`
	// Provisioning records: step index → record.
	Provision *Provisioning `json:"provision,omitempty"`
}

// Provisioning is what ran in a node.
type Provisioning struct {
	Done     bool         `json:"done"` // every step succeeded
	Steps    []StepRecord `json:"steps"`
	Finished time.Time    `json:"finished,omitempty"`
}

// StepRecord is one step's last successful run.
type StepRecord struct {
	Hash string    `json:"hash"`
	At   time.Time `json:"at"`
	OK   bool      `json:"ok"`
}

// Node phases.
const (
	PhaseCreating = "creating"
	PhaseCreated  = "created"
	PhaseRunning  = "running"
	PhaseHalted   = "halted"
)

// New returns an empty state for a lab.
func New(lab, file string) *State {
	return &State{Version: Version, Lab: lab, File: file, Networks: map[string]*Network{}, Nodes: map[string]*Node{}, Forwards: map[string]*Forward{}, Faults: map[string]*Fault{}}
}

// NodeNames returns the recorded nodes' names, sorted by role then index.
func (s *State) NodeNames() []string {
	var out []string
	for k := range s.Nodes {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := s.Nodes[out[i]], s.Nodes[out[j]]
		if a.Role != b.Role {
			return a.Role < b.Role
		}
		return a.Index < b.Index
	})
	return out
}

// Empty tells whether nothing is recorded.
func (s *State) Empty() bool {
	return len(s.Nodes) == 0 && len(s.Networks) == 0 && len(s.Forwards) == 0 && len(s.Faults) == 0
}

// Store is a lab's .lab folder.
type Store struct {
	Dir string

	mu       sync.Mutex
	lock     *os.File
	lockPath string
	// Recovered is set by Lock when it took over from a holder that had died.
	Recovered int
}

// Open returns the store in dir (created when needed).
func Open(dir string) *Store { return &Store{Dir: dir} }

func (s *Store) path() string { return filepath.Join(s.Dir, "state.json") }

// LogDir is where per-node logs go.
func (s *Store) LogDir() string { return filepath.Join(s.Dir, "logs") }

// Load reads the state, or returns nil and no error when there is none.
func (s *Store) Load() (*State, error) {
	b, err := fsx.ReadRegular(s.path(), MaxSize)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w%s", s.path(), err, corruptHint)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w%s", s.path(), err, corruptHint)
	}
	if err := st.check(); err != nil {
		return nil, fmt.Errorf("%s: %w%s", s.path(), err, corruptHint)
	}
	if st.Version != Version {
		return nil, fmt.Errorf("%s: state version %d, this lab understands %d", s.path(), st.Version, Version)
	}
	if st.Nodes == nil {
		st.Nodes = map[string]*Node{}
	}
	if st.Networks == nil {
		st.Networks = map[string]*Network{}
	}
	if st.Forwards == nil {
		st.Forwards = map[string]*Forward{}
	}
	if st.Faults == nil {
		st.Faults = map[string]*Fault{}
	}
	return &st, nil
}

// MaxSize is the largest state file lab reads.
const MaxSize = 64 << 20

const corruptHint = " (the state is damaged: lab destroy --name LAB removes what the lab made without it)"

var (
	// Node ids are LAB_NODE (LAB-NODE before 2026-12): never a path.
	idRe     = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	bridgeRe = regexp.MustCompile(`^lab-[a-z][a-z0-9-]*-[0-9]+$`)
)

// check refuses a state whose records are missing or do not match their
// keys, so no command trips over a null node or network.
func (st *State) check() error {
	for k, n := range st.Nodes {
		if n == nil {
			return fmt.Errorf("nodes.%s is null", k)
		}
		if n.Name != k {
			return fmt.Errorf("nodes.%s records node %q", k, n.Name)
		}
		if !idRe.MatchString(n.ID) {
			return fmt.Errorf("nodes.%s: bad id %q", k, n.ID)
		}
	}
	for k, n := range st.Networks {
		if n == nil {
			return fmt.Errorf("networks.%s is null", k)
		}
		if n.Name != k {
			return fmt.Errorf("networks.%s records network %q", k, n.Name)
		}
		if !bridgeRe.MatchString(n.Bridge) {
			return fmt.Errorf("networks.%s: %q is not a lab bridge (lab-NAME-N)", k, n.Bridge)
		}
	}
	for k, f := range st.Forwards {
		if f == nil {
			return fmt.Errorf("forwards.%s is null", k)
		}
	}
	for k, f := range st.Faults {
		if f == nil || f.ID != k {
			return fmt.Errorf("faults.%s is null or records another id", k)
		}
	}
	return nil
}

// Save writes the state atomically: a temporary file, fsync, rename.
func (s *Store) Save(st *State) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return fsx.WriteAtomic(s.path(), append(b, '\n'), 0o644)
}

// Remove deletes the state file and logs (after destroy).
func (s *Store) Remove() error {
	if err := os.Remove(s.path()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return os.RemoveAll(s.LogDir())
}

// RemoveAll deletes the whole .lab folder except the lock and, unless
// snapshots, the saved snapshots (after destroy).
func (s *Store) RemoveAll(snapshots bool) error {
	entries, err := os.ReadDir(s.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() == "lock" {
			continue
		}
		if e.Name() == "artifacts" {
			// lab test's reports are the user's to remove; an empty folder goes.
			_ = os.Remove(filepath.Join(s.Dir, e.Name()))
			continue
		}
		if e.Name() == "snapshots" && !snapshots {
			// Kept for a later restore or up --from; an empty folder goes.
			_ = os.Remove(filepath.Join(s.Dir, e.Name()))
			continue
		}
		if err := userns.RemoveAll(filepath.Join(s.Dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
