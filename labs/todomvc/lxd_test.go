package todomvc

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/labctl/lab/labtest"
)

// The same lab, the same test, on a 3-member LXD cluster (#21: the test
// bed of docs/lxd.md): provider lxd, the pg nodes one per member, so that
// replication and discovery cross members; snapshots are LXD exports, and
// the CI recipe (export, lab test --from in a fresh folder) runs on the
// cluster. A delay, which lab makes on this host's node ports, is refused
// with its reason.
func TestTodoMVCOnLXD(t *testing.T) {
	labtest.Integration(t)
	cl := labtest.NewLXDCluster(t, 3, "10.97.244")
	files := copyLab(t)
	files["lab.yaml"] = onLXD(t, files["lab.yaml"])
	l := labtest.New(t, name, files)
	l.Env = cl.Env
	e2e(t, l, cl)
	l.MustRun("destroy")
	assert.Empty(t, cl.Leaks(), "destroy leaves nothing in the cluster")
}

// onLXD moves the lab to provider lxd, its pg nodes round the members.
func onLXD(t *testing.T, src string) string {
	out := strings.Replace(src, "  provider: lxc\n", "  provider: lxd\n", 1)
	out = strings.Replace(out, "  - role: pg\n    count: 3\n", "  - role: pg\n    count: 3\n    lxd: {target: [m1, m2, m3]}\n", 1)
	require.Contains(t, out, "provider: lxd")
	require.Contains(t, out, "target: [m1, m2, m3]")
	return out
}

// spread checks where the cluster put the nodes (the pg nodes one per
// member, the lab on every member) and returns this host's port on the
// lab's network, which the host reaches every node through.
func spread(t *testing.T, l *labtest.Lab, cl *labtest.LXDCluster) string {
	st := l.Status()
	members := map[string]bool{}
	for n, s := range st {
		require.Contains(t, cl.Members, s.Member, n)
		members[s.Member] = true
	}
	assert.Len(t, members, 3, "the lab spans the members")
	assert.Equal(t, []string{"m1", "m2", "m3"}, []string{st["pg1"].Member, st["pg2"].Member, st["pg3"].Member})
	ports := cl.HostPorts()
	require.Len(t, ports, 1, "this host's port on the lab's one network")
	return ports[0]
}

// BenchmarkUpOnLXD reports the whole lab's up, to every health check
// green, on local LXC and on a 3-member LXD cluster (the test bed), in the
// same run; the cluster's includes importing the image into LXD's store
// (destroy leaves no image of the lab behind).
func BenchmarkUpOnLXD(b *testing.B) {
	labtest.Integration(b)
	cl := labtest.NewLXDCluster(b, 3, "10.97.244")
	t := &testing.T{}
	files := copyLab(t)
	local := labtest.New(b, name, files)
	local.MustRun("image", "build")
	lxdFiles := copyLab(t)
	lxdFiles["lab.yaml"] = onLXD(t, lxdFiles["lab.yaml"])
	cluster := labtest.New(b, name, lxdFiles)
	cluster.Env = cl.Env
	var locals, ups, destroys []time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		local.MustRun("up")
		locals = append(locals, time.Since(start))
		local.MustRun("destroy")
		start = time.Now()
		cluster.MustRun("up")
		ups = append(ups, time.Since(start))
		start = time.Now()
		cluster.MustRun("destroy")
		destroys = append(destroys, time.Since(start))
	}
	l, u := med(locals), med(ups)
	b.ReportMetric(l, "up-lxc-s")
	b.ReportMetric(u, "up-lxd-s")
	b.ReportMetric(u/l, "lxd/lxc")
	b.ReportMetric(med(destroys), "destroy-lxd-s")
	b.Logf("todomvc, warm cache: up on local LXC %.1fs; on a 3-member LXD cluster %.1fs (%.1fx, image import included); destroy there %.1fs", l, u, u/l, med(destroys))
}
