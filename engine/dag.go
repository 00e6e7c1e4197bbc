package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/labctl/lab/internal/graph"
)

// Task is one unit of work in a graph.
type Task struct {
	ID   string
	Deps []string
	Run  func(ctx context.Context) error
}

// ErrSkipped marks a task that did not run because a task it depends on
// failed or was skipped.
var ErrSkipped = errors.New("skipped")

// SkippedError says which dependency kept a task from running.
type SkippedError struct{ Dep string }

func (e *SkippedError) Error() string {
	_, what, _ := strings.Cut(e.Dep, ":") // task ids are kind:node
	if what == "" {
		what = e.Dep
	}
	return fmt.Sprintf("skipped: %s did not finish", what)
}
func (e *SkippedError) Is(target error) bool {
	return target == ErrSkipped
}

// RunGraph runs tasks as soon as their dependencies succeed, at most workers
// at a time. A failed task skips its dependents only: independent tasks still
// finish. When ctx ends, running tasks see it and no new task starts. It
// returns every task's error (nil for success); an unknown dependency or a
// cycle is an error before anything runs.
func RunGraph(ctx context.Context, tasks []Task, workers int) (map[string]error, error) {
	g, err := newGraphRun(tasks)
	if err != nil {
		return nil, err
	}
	return g.run(ctx, max(workers, 1)), nil
}

// graphRun is one run of a task graph.
type graphRun struct {
	tasks      []Task
	byID       map[string]*Task
	pending    map[string]int      // unfinished dependencies
	dependents map[string][]string // task → tasks that depend on it
	results    map[string]error
}

// newGraphRun indexes the tasks and refuses duplicates, unknown
// dependencies and cycles.
func newGraphRun(tasks []Task) (*graphRun, error) {
	g := &graphRun{tasks: tasks, byID: map[string]*Task{}, pending: map[string]int{}, dependents: map[string][]string{}, results: map[string]error{}}
	ids := make([]string, 0, len(tasks))
	for i := range tasks {
		t := &tasks[i]
		if _, dup := g.byID[t.ID]; dup {
			return nil, fmt.Errorf("graph: task %q twice", t.ID)
		}
		g.byID[t.ID] = t
		ids = append(ids, t.ID)
	}
	for _, t := range tasks {
		for _, d := range t.Deps {
			if _, ok := g.byID[d]; !ok {
				return nil, fmt.Errorf("graph: task %q depends on unknown %q", t.ID, d)
			}
			g.dependents[d] = append(g.dependents[d], t.ID)
		}
		g.pending[t.ID] = len(t.Deps)
	}
	if cyc := graph.Cycle(ids, func(id string) []string { return g.byID[id].Deps }); cyc != nil {
		return nil, fmt.Errorf("graph: cycle %s", strings.Join(cyc, " → "))
	}
	return g, nil
}

type taskDone struct {
	id  string
	err error
}

func (g *graphRun) run(ctx context.Context, workers int) map[string]error {
	doneCh := make(chan taskDone)
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	var ready []string
	for _, t := range g.tasks {
		if g.pending[t.ID] == 0 {
			ready = append(ready, t.ID)
		}
	}
	running := 0
	for len(ready) > 0 || running > 0 {
		for _, id := range ready {
			running++
			wg.Add(1)
			go func() {
				defer wg.Done()
				doneCh <- taskDone{id, g.runOne(ctx, sem, id)}
			}()
		}
		ready = nil
		if running == 0 {
			break
		}
		d := <-doneCh
		running--
		ready = g.finished(d)
	}
	wg.Wait()
	return g.results
}

// runOne runs a task once a worker is free, unless ctx ends first.
func (g *graphRun) runOne(ctx context.Context, sem chan struct{}, id string) error {
	select {
	case sem <- struct{}{}:
		defer func() { <-sem }()
		if err := ctx.Err(); err != nil {
			return err
		}
		return g.byID[id].Run(ctx)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// finished records a task's end and returns the tasks it made ready; a
// failure skips everything that depends on it.
func (g *graphRun) finished(d taskDone) []string {
	g.results[d.id] = d.err
	if d.err != nil {
		for _, dep := range g.dependents[d.id] {
			g.skip(dep, d.id)
		}
		return nil
	}
	var ready []string
	for _, dep := range g.dependents[d.id] {
		g.pending[dep]--
		if g.pending[dep] == 0 {
			if _, skipped := g.results[dep]; !skipped {
				ready = append(ready, dep)
			}
		}
	}
	return ready
}

func (g *graphRun) skip(id, because string) {
	if _, seen := g.results[id]; seen {
		return
	}
	g.results[id] = &SkippedError{Dep: because}
	for _, d := range g.dependents[id] {
		g.skip(d, because)
	}
}
