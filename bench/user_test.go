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
