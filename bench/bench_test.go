// Package bench measures lab against the floor: the same containers started
// straight through liblxc with nothing else around them. Run with make bench.
package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	golxc "github.com/lxc/go-lxc"

	"github.com/labctl/lab/image"
	"github.com/labctl/lab/labtest"
	"github.com/labctl/lab/providers/lxc"
)

// The all-in-one image the floor was measured with (../shared/ENVIRONMENT.md).
var allInOne = []string{"systemd-sysv", "iproute2", "ifupdown", "openssh-server", "python3", "nginx-light", "postgresql"}

const nodes = 5

func warmImage(b *testing.B) *image.Image {
	b.Helper()
	pk := append(append([]string{}, allInOne...), lxc.BasePackages...)
	c := &image.Cache{Dir: "/var/cache/lab"}
	img, err := c.Ensure(context.Background(), image.Spec{Suite: "bookworm", Packages: pk}, nil)
	if err != nil {
		b.Fatal(err)
	}
	return img
}

func sh(b *testing.B, name string, args ...string) {
	b.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		b.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// floor starts n overlay containers of img directly with go-lxc, in
// parallel, and returns the time until systemd in all of them says running
// or degraded. It removes them afterwards.
func floor(b *testing.B, img *image.Image, nodes int) time.Duration {
	up, _ := floorUpDown(b, img, nodes)
	return up
}

// floorUpDown is floor, and the time to stop and destroy those containers
// through go-lxc, all at once (the floor of lab destroy).
func floorUpDown(b *testing.B, img *image.Image, nodes int) (up, down time.Duration) {
	const br, lxcpath = "lab-bfloor-0", "/var/lib/lxc"
	sh(b, "ip", "link", "add", br, "type", "bridge")
	defer exec.Command("ip", "link", "del", br).Run()
	sh(b, "ip", "addr", "add", "10.97.200.1/24", "dev", br)
	sh(b, "ip", "link", "set", br, "up")
	var names []string
	for i := 1; i <= nodes; i++ {
		name := fmt.Sprintf("bfloor-n%d", i)
		names = append(names, name)
		dir := filepath.Join(lxcpath, name)
		if err := os.MkdirAll(filepath.Join(dir, "delta0"), 0o755); err != nil {
			b.Fatal(err)
		}
		cfg := fmt.Sprintf(`lxc.include = /usr/share/lxc/config/common.conf
lxc.arch = linux64
lxc.uts.name = n%d
lxc.rootfs.path = overlay:%s:%s/delta0
lxc.net.0.type = veth
lxc.net.0.link = %s
lxc.net.0.flags = up
lxc.net.0.ipv4.address = 10.97.200.%d/24
lxc.apparmor.profile = unconfined
`, i, img.RootFS, dir, br, 10+i)
		if err := os.WriteFile(filepath.Join(dir, "config"), []byte(cfg), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	removed := false
	remove := func() time.Duration {
		removed = true
		t := time.Now()
		var wg sync.WaitGroup
		for _, n := range names {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if c, err := golxc.NewContainer(n, lxcpath); err == nil {
					_ = c.Stop()
					_ = c.Destroy()
					golxc.Release(c)
				}
				os.RemoveAll(filepath.Join(lxcpath, n))
				lxc.RemoveCgroups(n)
			}()
		}
		wg.Wait()
		return time.Since(t)
	}
	defer func() {
		if !removed {
			remove()
		}
	}()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, nodes)
	for _, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := golxc.NewContainer(n, lxcpath)
			if err != nil {
				errs <- err
				return
			}
			defer golxc.Release(c)
			if err := c.Start(); err != nil {
				errs <- err
				return
			}
			for time.Since(start) < 2*time.Minute {
				out, _ := exec.Command("lxc-attach", "-n", n, "--", "systemctl", "is-system-running").Output()
				if s := strings.TrimSpace(string(out)); s == "running" || s == "degraded" {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
			errs <- fmt.Errorf("%s did not boot", n)
		}()
	}
	wg.Wait()
	up = time.Since(start)
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return up, remove()
}

// reportRuns reports the medians of the floor's, up's and destroy's runs,
// and returns them.
func reportRuns(b *testing.B, floors, ups, destroys []time.Duration) (f, u, d time.Duration) {
	f, u, d = median(floors), median(ups), median(destroys)
	b.ReportMetric(f.Seconds(), "floor-s")
	b.ReportMetric(u.Seconds(), "up-s")
	b.ReportMetric(u.Seconds()/f.Seconds(), "up/floor")
	b.ReportMetric(d.Seconds(), "destroy-s")
	return f, u, d
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// BenchmarkUp5 reports lab up of 5 nodes from a warm image cache next to the
// floor measured in the same run, and lab destroy; and the same 5 nodes
// privileged (the floor's containers are privileged).
func BenchmarkUp5(b *testing.B) {
	labtest.Integration(b)
	img := warmImage(b)
	file := fmt.Sprintf(`name: bench
networks: [{name: lan, subnet: 10.97.201.0/24}]
defaults: {privileged: %%s}
nodes:
  - role: node
    count: %d
    packages: [%s]
`, nodes, strings.Join(allInOne, ", "))
	l := labtest.New(b, "bench", map[string]string{"lab.yaml": fmt.Sprintf(file, "false")})
	l.MustRun("image", "build")
	l.MustRun("up") // the image shifted for unprivileged nodes, once
	l.MustRun("destroy")
	var floors, ups, privs, destroys []time.Duration
	for i := 0; i < b.N; i++ {
		floors = append(floors, floor(b, img, nodes))
		t := time.Now()
		l.MustRun("up")
		ups = append(ups, time.Since(t))
		t = time.Now()
		l.MustRun("destroy")
		destroys = append(destroys, time.Since(t))
		l.Write("lab.yaml", fmt.Sprintf(file, "true"))
		t = time.Now()
		l.MustRun("up")
		privs = append(privs, time.Since(t))
		l.MustRun("destroy")
		l.Write("lab.yaml", fmt.Sprintf(file, "false"))
	}
	f, u, d := reportRuns(b, floors, ups, destroys)
	p := median(privs)
	b.ReportMetric(p.Seconds(), "up-privileged-s")
	b.Logf("5 nodes, warm cache: floor (liblxc directly, privileged) %.2fs, lab up %.2fs (%.2fx, goal ≤1.3x), privileged %.2fs (%.2fx), lab destroy %.2fs (goal <1s)", f.Seconds(), u.Seconds(), u.Seconds()/f.Seconds(), p.Seconds(), p.Seconds()/f.Seconds(), d.Seconds())
}
