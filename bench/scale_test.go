package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/labctl/lab/image"
	"github.com/labctl/lab/labtest"
	"github.com/labctl/lab/providers/lxc"
)

// scaleSizes are the node counts of the scale curve; LAB_BENCH_SIZES
// (comma separated) picks others.
func scaleSizes(b *testing.B) []int {
	spec := os.Getenv("LAB_BENCH_SIZES")
	if spec == "" {
		return []int{5, 30, 60, 100}
	}
	var out []int
	for _, f := range strings.Split(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 100 {
			b.Fatalf("LAB_BENCH_SIZES: %q is not a node count from 1 to 100", f)
		}
		out = append(out, n)
	}
	return out
}

// bareImage is the image of a node with no packages of its own: what lab
// up makes bare nodes from, and what the floor starts.
func bareImage(b *testing.B) *image.Image {
	b.Helper()
	c := &image.Cache{Dir: "/var/cache/lab"}
	img, err := c.Ensure(context.Background(), image.Spec{Suite: "bookworm", Packages: lxc.BasePackages}, nil)
	if err != nil {
		b.Fatal(err)
	}
	return img
}

// nodeMemory is the memory the kernel charges the lab's containers (their
// memory cgroups: processes, page cache and kernel memory), per node.
func nodeMemory(b *testing.B, lab string, n int) int64 {
	var sum int64
	for _, pat := range []string{"/sys/fs/cgroup/memory/lxc.payload." + lab + "_*/memory.usage_in_bytes", "/sys/fs/cgroup/lxc.payload." + lab + "_*/memory.current"} {
		files, _ := filepath.Glob(pat)
		for _, f := range files {
			raw, err := os.ReadFile(f)
			if err != nil {
				b.Fatal(err)
			}
			v, _ := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
			sum += v
		}
		if len(files) > 0 {
			return sum / int64(n)
		}
	}
	b.Fatalf("no memory cgroups of lab %s", lab)
	return 0
}

// memAvailable is the host's MemAvailable in bytes.
func memAvailable(b *testing.B) int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemAvailable:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	b.Fatal("no MemAvailable in /proc/meminfo")
	return 0
}

// BenchmarkScale is the scale curve: lab up of N bare nodes against the
// floor (the same containers, same image, started straight through liblxc
// in the same run), lab destroy, and the memory an idle node takes. The
// first up of each size raises the host's limits (reported as lab says it);
// the floor runs after it, on the same limits.
func BenchmarkScale(b *testing.B) {
	labtest.Integration(b)
	img := bareImage(b)
	for _, n := range scaleSizes(b) {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			l := labtest.New(b, "bscale", map[string]string{"lab.yaml": fmt.Sprintf(`name: bscale
networks: [{name: lan, subnet: 10.97.216.0/21}]
nodes:
  - role: n
    count: %d
`, n)})
			_, stderr, code := l.Run("up") // warms the state folder, raises limits
			if code != 0 {
				b.Fatalf("lab up of %d nodes: %s", n, stderr)
			}
			if i := strings.Index(stderr, "raised kernel limits"); i >= 0 {
				line, _, _ := strings.Cut(stderr[i:], "\n")
				b.Logf("%d nodes: %s", n, line)
			}
			l.MustRun("destroy")
			var floors, floorDowns, ups, destroys []time.Duration
			var mem, charged int64
			for i := 0; i < b.N; i++ {
				fu, fd := floorUpDown(b, img, n)
				floors, floorDowns = append(floors, fu), append(floorDowns, fd)
				time.Sleep(time.Second)
				before := memAvailable(b)
				t := time.Now()
				l.MustRun("up")
				ups = append(ups, time.Since(t))
				time.Sleep(3 * time.Second) // idle
				mem = (before - memAvailable(b)) / int64(n)
				charged = nodeMemory(b, "bscale", n)
				t = time.Now()
				l.MustRun("destroy")
				destroys = append(destroys, time.Since(t))
			}
			f, u, d := reportRuns(b, floors, ups, destroys)
			fd := median(floorDowns)
			b.ReportMetric(fd.Seconds(), "floor-destroy-s")
			b.ReportMetric(float64(charged)/(1<<20), "MB/node")
			b.Logf("%d bare nodes: floor %.2fs, lab up %.2fs (%.2fx, goal ≤1.0x), destroy %.2fs (floor: all stopped and destroyed through liblxc at once %.2fs, %.2fx); per idle node %.1f MB charged to its cgroup, %.1f MB less available on the host",
				n, f.Seconds(), u.Seconds(), u.Seconds()/f.Seconds(), d.Seconds(), fd.Seconds(), d.Seconds()/fd.Seconds(), float64(charged)/(1<<20), float64(mem)/(1<<20))
		})
	}
}
