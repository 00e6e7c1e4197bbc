package engine

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type tracker struct {
	mu     sync.Mutex
	order  []string
	active int32
	peak   int32
}

func (tr *tracker) task(id string, deps []string, d time.Duration, err error) Task {
	return Task{ID: id, Deps: deps, Run: func(ctx context.Context) error {
		n := atomic.AddInt32(&tr.active, 1)
		for {
			p := atomic.LoadInt32(&tr.peak)
			if n <= p || atomic.CompareAndSwapInt32(&tr.peak, p, n) {
				break
			}
		}
		defer atomic.AddInt32(&tr.active, -1)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return ctx.Err()
		}
		tr.mu.Lock()
		tr.order = append(tr.order, id)
		tr.mu.Unlock()
		return err
	}}
}

func (tr *tracker) pos(id string) int {
	for i, o := range tr.order {
		if o == id {
			return i
		}
	}
	return -1
}

func TestGraphOrderAndParallelism(t *testing.T) {
	tr := &tracker{}
	tasks := []Task{
		tr.task("pg1", nil, 30*time.Millisecond, nil),
		tr.task("pg2", nil, 30*time.Millisecond, nil),
		tr.task("adm1", nil, 10*time.Millisecond, nil),
		tr.task("web1", []string{"pg1", "pg2", "adm1"}, 10*time.Millisecond, nil),
		tr.task("web2", []string{"pg1", "pg2", "adm1"}, 10*time.Millisecond, nil),
	}
	res, err := RunGraph(context.Background(), tasks, 8)
	require.NoError(t, err)
	for _, id := range []string{"pg1", "pg2", "adm1", "web1", "web2"} {
		assert.NoError(t, res[id], id)
	}
	for _, web := range []string{"web1", "web2"} {
		for _, dep := range []string{"pg1", "pg2", "adm1"} {
			assert.Less(t, tr.pos(dep), tr.pos(web), "%s ran before %s", web, dep)
		}
	}
	assert.GreaterOrEqual(t, tr.peak, int32(3), "independent tasks ran one at a time")
}

func TestGraphBoundedWorkers(t *testing.T) {
	tr := &tracker{}
	var tasks []Task
	for _, id := range []string{"a", "b", "c", "d", "e", "f"} {
		tasks = append(tasks, tr.task(id, nil, 20*time.Millisecond, nil))
	}
	_, err := RunGraph(context.Background(), tasks, 2)
	require.NoError(t, err)
	assert.Equal(t, int32(2), tr.peak)
	assert.Len(t, tr.order, 6)
}

func TestGraphFailureSkipsOnlyDependents(t *testing.T) {
	tr := &tracker{}
	boom := errors.New("boom")
	tasks := []Task{
		tr.task("pg1", nil, time.Millisecond, boom),
		tr.task("adm1", nil, time.Millisecond, nil),
		tr.task("web1", []string{"pg1"}, time.Millisecond, nil),
		tr.task("lb1", []string{"web1"}, time.Millisecond, nil),
		tr.task("mon1", []string{"adm1"}, time.Millisecond, nil),
	}
	res, err := RunGraph(context.Background(), tasks, 4)
	require.NoError(t, err)
	assert.ErrorIs(t, res["pg1"], boom)
	assert.NoError(t, res["adm1"])
	assert.NoError(t, res["mon1"], "independent task must finish")
	assert.ErrorIs(t, res["web1"], ErrSkipped)
	assert.ErrorIs(t, res["lb1"], ErrSkipped)
	assert.Contains(t, res["lb1"].Error(), "pg1")
	assert.Equal(t, -1, tr.pos("web1"))
}

func TestGraphCancellation(t *testing.T) {
	tr := &tracker{}
	ctx, cancel := context.WithCancel(context.Background())
	tasks := []Task{
		tr.task("slow1", nil, time.Minute, nil),
		tr.task("slow2", nil, time.Minute, nil),
		tr.task("after", []string{"slow1"}, time.Millisecond, nil),
	}
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	start := time.Now()
	res, err := RunGraph(ctx, tasks, 4)
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 30*time.Second, "cancel did not stop running tasks (they take a minute)")
	assert.ErrorIs(t, res["slow1"], context.Canceled)
	assert.ErrorIs(t, res["after"], ErrSkipped)
	assert.Empty(t, tr.order)
}

func TestGraphRejectsBadGraphs(t *testing.T) {
	nop := func(context.Context) error { return nil }
	_, err := RunGraph(context.Background(), []Task{{ID: "a", Deps: []string{"zz"}, Run: nop}}, 1)
	assert.ErrorContains(t, err, "unknown")
	_, err = RunGraph(context.Background(), []Task{{ID: "a", Deps: []string{"b"}, Run: nop}, {ID: "b", Deps: []string{"a"}, Run: nop}}, 1)
	assert.ErrorContains(t, err, "cycle")
	_, err = RunGraph(context.Background(), []Task{{ID: "a", Run: nop}, {ID: "a", Run: nop}}, 1)
	assert.ErrorContains(t, err, "twice")
}
