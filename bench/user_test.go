package bench

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labctl/lab/labtest"
)

// BenchmarkUp5AsUser reports lab up and destroy of the same 5 nodes as
// BenchmarkUp5, run by a user that is not root (lab without root: its own
// image cache, liblxc as the user, the network helper), next to the floor
// measured in the same run.
func BenchmarkUp5AsUser(b *testing.B) {
	img := warmImage(b)
	u := labtest.NewUser(b, "labb")
	u.Setup()
	dir := filepath.Join(u.Home, "bench")
	u.Write(dir, map[string]string{"lab.yaml": fmt.Sprintf(`name: buser
networks: [{name: lan, subnet: 10.97.203.0/24}]
nodes:
  - role: node
    count: %d
    packages: [%s]
`, nodes, strings.Join(allInOne, ", "))})
	run := func(args ...string) {
		b.Helper()
		if out, code := u.Lab(dir, args...); code != 0 {
			b.Fatalf("lab %s as %s: exit %d\n%s", strings.Join(args, " "), u.Name, code, out)
		}
	}
	b.Cleanup(func() { u.Lab(dir, "destroy") })
	run("image", "build") // the user's own image, once
	var floors, ups, destroys []time.Duration
	for i := 0; i < b.N; i++ {
		floors = append(floors, floor(b, img, nodes))
		t := time.Now()
		run("up")
		ups = append(ups, time.Since(t))
		t = time.Now()
		run("destroy")
		destroys = append(destroys, time.Since(t))
	}
	f, up, d := reportRuns(b, floors, ups, destroys)
	b.Logf("5 nodes as a user, warm cache: floor (liblxc directly, root, privileged) %.2fs, lab up as a user %.2fs (%.2fx), lab destroy %.2fs",
		f.Seconds(), up.Seconds(), up.Seconds()/f.Seconds(), d.Seconds())
}

// BenchmarkUserImage reports how long a user that is not root waits for
// the image of BenchmarkUp5's nodes when it has none: bootstrapped in its
// own namespace, or unpacked from root's shared cache (lab host setup made
// the group lab, so root's lab image build shares the image).
func BenchmarkUserImage(b *testing.B) {
	u := labtest.NewUser(b, "labi")
	u.Setup()
	file := fmt.Sprintf("name: bimg\nnodes:\n  - role: node\n    packages: [%s]\n", strings.Join(allInOne, ", "))
	dir := filepath.Join(u.Home, "img")
	u.Write(dir, map[string]string{"lab.yaml": file})
	labtest.New(b, "bimg", map[string]string{"lab.yaml": file}).MustRun("image", "build") // root's, shared
	b.Cleanup(func() { u.Lab(dir, "image", "prune") })
	var own, shared []time.Duration
	for i := 0; i < b.N; i++ {
		for _, c := range []struct {
			as    *labtest.User
			times *[]time.Duration
		}{{u.With("LAB_SHARED_CACHE=none"), &own}, {u, &shared}} {
			if out, code := c.as.Lab(dir, "image", "prune"); code != 0 {
				b.Fatalf("lab image prune as %s: exit %d\n%s", u.Name, code, out)
			}
			t := time.Now()
			if out, code := c.as.Lab(dir, "image", "build"); code != 0 {
				b.Fatalf("lab image build as %s: exit %d\n%s", u.Name, code, out)
			}
			*c.times = append(*c.times, time.Since(t))
		}
	}
	o, s := median(own), median(shared)
	b.ReportMetric(o.Seconds(), "own-s")
	b.ReportMetric(s.Seconds(), "shared-s")
	b.Logf("a user's image of %d packages: bootstrapped in its namespace %.1fs, unpacked from root's shared cache %.1fs (%.0fx faster)",
		len(allInOne), o.Seconds(), s.Seconds(), o.Seconds()/s.Seconds())
}
