package bench

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/labctl/lab/labtest"
)

// BenchmarkLXDUp reports lab up and destroy of the same 5 nodes on local
// LXC and on a 3-member LXD cluster (the test bed of docs/lxd.md, on this
// machine), in the same run. The cluster's up includes importing the image
// into LXD's store: destroy leaves no image of the lab behind.
func BenchmarkLXDUp(b *testing.B) {
	labtest.Integration(b)
	cl := labtest.NewLXDCluster(b, 3, "10.97.205")
	file := `name: %s
defaults: {provider: %s}
networks: [{name: lan, subnet: %s}]
nodes:
  - role: node
    count: %d
    packages: [%s]
`
	pkgs := strings.Join(allInOne, ", ")
	local := labtest.New(b, "blocal", map[string]string{"lab.yaml": fmt.Sprintf(file, "blocal", "lxc", "10.97.206.0/24", nodes, pkgs)})
	cluster := labtest.New(b, "bclust", map[string]string{"lab.yaml": fmt.Sprintf(file, "bclust", "lxd", "10.97.207.0/24", nodes, pkgs)})
	cluster.Env = cl.Env
	local.MustRun("image", "build")
	local.MustRun("up") // the image shifted for unprivileged nodes, once
	local.MustRun("destroy")
	var locals, ups, destroys []time.Duration
	for i := 0; i < b.N; i++ {
		t := time.Now()
		local.MustRun("up")
		locals = append(locals, time.Since(t))
		local.MustRun("destroy")
		t = time.Now()
		_, events, code := cluster.Run("up")
		ups = append(ups, time.Since(t))
		if code != 0 || i == 0 {
			b.Logf("lab up on the cluster (exit %d):\n%s", code, events)
		}
		if code != 0 {
			b.FailNow()
		}
		t = time.Now()
		cluster.MustRun("destroy")
		destroys = append(destroys, time.Since(t))
	}
	l, u, d := median(locals), median(ups), median(destroys)
	b.ReportMetric(l.Seconds(), "up-lxc-s")
	b.ReportMetric(u.Seconds(), "up-lxd-s")
	b.ReportMetric(u.Seconds()/l.Seconds(), "lxd/lxc")
	b.ReportMetric(d.Seconds(), "destroy-lxd-s")
	b.Logf("5 nodes, warm cache: lab up on local LXC %.2fs; on a 3-member LXD cluster %.2fs (%.2fx, image import included), lab destroy there %.2fs",
		l.Seconds(), u.Seconds(), u.Seconds()/l.Seconds(), d.Seconds())
}
