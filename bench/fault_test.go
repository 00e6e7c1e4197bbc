package bench

import (
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/labctl/lab/labtest"
)

// BenchmarkFault reports how long lab fault takes to put a partition and a
// delay in force and to heal each (goal: under 0.2 s each), as the command
// a user runs, end to end.
func BenchmarkFault(b *testing.B) {
	labtest.Integration(b)
	l := labtest.New(b, "bfault", map[string]string{"lab.yaml": "name: bfault\nnetworks: [{name: lan, subnet: 10.97.201.0/24}]\nnodes: [{role: n, count: 2}]\n"})
	l.MustRun("up")
	times := map[string][]time.Duration{}
	timed := func(what string, args ...string) string {
		start := time.Now()
		out := l.MustRun(args...)
		times[what] = append(times[what], time.Since(start))
		return strings.TrimSpace(out)
	}
	for i := 0; i < b.N; i++ {
		id := timed("partition", "fault", "partition", "n1", "n2")
		timed("heal-partition", "fault", "heal", id)
		id = timed("delay", "fault", "delay", "n1", "100ms")
		timed("heal-delay", "fault", "heal", id)
	}
	for _, what := range []string{"partition", "heal-partition", "delay", "heal-delay"} {
		d := times[what]
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		b.ReportMetric(d[len(d)/2].Seconds(), what+"-s")
	}
	l.MustRun("destroy")
}
