// Package engine turns a topology into a running lab and back. Each verb
// (up, halt, destroy, status, exec, provision, plan) has a file of its own
// and works on one per-call object (call.go): the lab's lock, its file, the
// lab expanded with the subnets its state recorded, the state, and the
// events, made once per call. Up plans against the state, makes networks
// and images, and runs nodes through create → start → files → provision →
// health as a graph (roles ordered by `after`, nodes of a role in parallel,
// bounded workers), saving the state after every step so that an
// interrupted run can always be resumed or destroyed.
package engine

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/labctl/lab/host"
	"github.com/labctl/lab/image"
	"github.com/labctl/lab/network"
	"github.com/labctl/lab/providers"
	"github.com/labctl/lab/provision"
	"github.com/labctl/lab/state"
)

// Images builds or finds node images. log receives the build's output.
type Images interface {
	Ensure(ctx context.Context, spec image.Spec, log func(line string)) (*image.Image, error)
}

// Networks makes lab networks on the host.
type Networks interface {
	Ensure(ctx context.Context, lab string, n network.Net) error
	SetHosts(bridge, lines string) error
	Remove(ctx context.Context, lab, bridge string) error
	CheckFree(ctx context.Context, subnet netip.Prefix, bridge string) error
	// Preflight says why a network cannot be made, changing nothing.
	Preflight(ctx context.Context, lab string, n network.Net) error
	// ApplyPolicy puts a lab's firewall, anti-spoofing and partitions in
	// force; RemoveLab lifts them and the lab's delays (destroy).
	ApplyPolicy(ctx context.Context, p network.Policy) error
	RemoveLab(ctx context.Context, lab string) error
}

// Delays is a Networks that runs faults' delay lines itself (the network
// helper, for a user that is not root); without it the engine runs them
// through package network.
type Delays interface {
	StartDelay(ctx context.Context, lab, id string, ports []string, from []netip.Addr, d network.Delay, logDir string) (int, error)
	StopDelay(ctx context.Context, lab, id string, ports []string, pid int) error
}

// Provisioner runs a node's provisioning steps and health checks, through
// a request type that provisioning owns.
type Provisioner interface {
	Provision(ctx context.Context, r provision.Request) (*state.Provisioning, error)
	Health(ctx context.Context, r provision.Request, timeout time.Duration) error
}

// Engine runs lab commands for one lab folder. It holds only what it
// depends on; what one call works on is in a call (call.go).
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
	// Limits checks and raises the host's kernel limits before up makes
	// nodes (nil: never).
	Limits Limits
}

// Limits are the host's kernel limits that many containers run into.
type Limits interface {
	Check(containers int) ([]host.Limit, error)
	Raise([]host.Limit) error
}

func (e *Engine) provider(name string) (providers.Provider, error) {
	if e.Provider == nil {
		return nil, fmt.Errorf("no provider %q", name)
	}
	return e.Provider(name)
}

func (e *Engine) workers() int {
	if e.Workers > 0 {
		return e.Workers
	}
	return 8
}

// owner is the lab's state folder, as providers record it with each node.
func (e *Engine) owner() string {
	if abs, err := filepath.Abs(e.Store.Dir); err == nil {
		return abs
	}
	return e.Store.Dir
}

// LogPath is where a node's full log is kept.
func (e *Engine) LogPath(node string) string {
	return filepath.Join(e.Store.LogDir(), node+".log")
}
