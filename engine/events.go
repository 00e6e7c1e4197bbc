package engine

import (
	"sync"
	"time"
)

// Event is one step of progress, for people (a line per node) and for CI
// (one JSON object per line with `lab up --json`).
type Event struct {
	Time    time.Time `json:"time"`
	Lab     string    `json:"lab"`
	Node    string    `json:"node,omitempty"`
	Phase   string    `json:"phase"`
	Message string    `json:"message,omitempty"`
	Elapsed float64   `json:"elapsed"` // seconds since the command started
	Error   string    `json:"error,omitempty"`
}

// Phases, in the order a node goes through them.
const (
	PhasePlan      = "plan"
	PhaseNetwork   = "network"
	PhaseImage     = "image"
	PhaseDestroy   = "destroy"
	PhaseCreate    = "create"
	PhaseStart     = "start"
	PhaseReady     = "ready"
	PhaseFiles     = "files"
	PhaseWaiting   = "waiting"
	PhaseProvision = "provision"
	PhaseHealth    = "health"
	PhaseDone      = "done"
	PhaseForward   = "forward"
	PhaseStop      = "stop"
	PhaseFailed    = "failed"
	PhaseSkipped   = "skipped"
	PhaseLock      = "lock"
	PhaseFirewall  = "firewall"
	PhaseFault     = "fault"
	PhaseSnapshot  = "snapshot"
	PhaseHost      = "host"
)

// Sink receives events. It must be safe for concurrent use.
type Sink interface{ Emit(Event) }

// SinkFunc adapts a function to a Sink.
type SinkFunc func(Event)

func (f SinkFunc) Emit(e Event) { f(e) }

// Recorder is a Sink that keeps events, for tests.
type Recorder struct {
	mu     sync.Mutex
	Events []Event
}

func (r *Recorder) Emit(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Events = append(r.Events, e)
}

// Phases returns the phases one node went through, in order.
func (r *Recorder) Phases(node string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.Events {
		if e.Node == node {
			out = append(out, e.Phase)
		}
	}
	return out
}
