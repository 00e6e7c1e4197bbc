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
	if workers < 1 {
		workers = 1
	}
	byID := map[string]*Task{}
	for i := range tasks {
		t := &tasks[i]
		if _, dup := byID[t.ID]; dup {
			return nil, fmt.Errorf("graph: task %q twice", t.ID)
		}
		byID[t.ID] = t
	}
	pending := map[string]int{}
	dependents := map[string][]string{}
	for _, t := range tasks {
		for _, d := range t.Deps {
			if _, ok := byID[d]; !ok {
				return nil, fmt.Errorf("graph: task %q depends on unknown %q", t.ID, d)
			}
			dependents[d] = append(dependents[d], t.ID)
		}
		pending[t.ID] = len(t.Deps)
	}
	ids := make([]string, 0, len(tasks))
	for _, t := range tasks {
		ids = append(ids, t.ID)
	}
	if cyc := graph.Cycle(ids, func(id string) []string { return byID[id].Deps }); cyc != nil {
		return nil, fmt.Errorf("graph: cycle %s", strings.Join(cyc, " → "))
	}

	type done struct {
		id  string
		err error
	}
	results := map[string]error{}
	doneCh := make(chan done)
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	var ready []string
	for _, t := range tasks {
		if pending[t.ID] == 0 {
			ready = append(ready, t.ID)
		}
	}
	running := 0
	start := func(id string) {
		running++
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			select {
			case sem <- struct{}{}:
				if err = ctx.Err(); err == nil {
					err = byID[id].Run(ctx)
				}
				<-sem
			case <-ctx.Done():
				err = ctx.Err()
			}
			doneCh <- done{id, err}
		}()
	}
	var skip func(id, because string)
	skip = func(id, because string) {
		if _, seen := results[id]; seen {
			return
		}
		results[id] = &SkippedError{Dep: because}
		for _, d := range dependents[id] {
			skip(d, because)
		}
	}
	for len(ready) > 0 || running > 0 {
		for _, id := range ready {
			start(id)
		}
		ready = nil
		if running == 0 {
			break
		}
		d := <-doneCh
		running--
		results[d.id] = d.err
		if d.err != nil {
			for _, dep := range dependents[d.id] {
				skip(dep, d.id)
			}
			continue
		}
		for _, dep := range dependents[d.id] {
			pending[dep]--
			if pending[dep] == 0 {
				if _, skipped := results[dep]; !skipped {
					ready = append(ready, dep)
				}
			}
		}
	}
	wg.Wait()
	return results, nil
}
