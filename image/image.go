// Package image builds node root filesystems with mmdebstrap (debootstrap as
// the fallback) and caches them by content: the key is a hash of suite,
// mirror and the sorted package list. Builds are atomic (made aside, then
// renamed into place) and safe when two labs build the same image at once
// (an flock per key). Downloaded .debs are kept in a shared cache and
// hard-linked into the next build, so a new package set only downloads what
// is new.
package image

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/labctl/lab/internal/fsx"
	"github.com/labctl/lab/internal/shell"
	"github.com/labctl/lab/internal/userns"
)

// DefaultMirror is the Debian mirror used unless the user sets another.
const DefaultMirror = "http://deb.debian.org/debian"

// Spec says what goes into an image.
type Spec struct {
	Suite    string   `json:"suite"`
	Mirror   string   `json:"mirror"`
	Packages []string `json:"packages"`
	// Base is the part of Packages that many images share (a provider's
	// own packages): an image with more is built as a layer over the image
	// of its base (see layer.go). It does not change the key: the same
	// packages make the same image, however it was built.
	Base []string `json:"base,omitempty"`
}

// Normalize sorts and de-duplicates the package lists; Base is kept to
// what Packages holds.
func (s Spec) Normalize() Spec {
	s.Packages = sortedSet(s.Packages, nil)
	in := map[string]bool{}
	for _, p := range s.Packages {
		in[p] = true
	}
	s.Base = sortedSet(s.Base, in)
	if len(s.Base) == 0 {
		s.Base = nil
	}
	if s.Mirror == "" {
		s.Mirror = DefaultMirror
	}
	return s
}

// sortedSet sorts and de-duplicates list, keeping what only is in only (all
// when nil).
func sortedSet(list []string, only map[string]bool) []string {
	out := make([]string, 0, len(list))
	for _, p := range list {
		if only == nil || only[p] {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Key is the content key of the image.
func (s Spec) Key() string {
	s = s.Normalize()
	h := sha256.New()
	fmt.Fprintf(h, "lab-image-v3\nsuite=%s\nmirror=%s\npackages=%s\n", s.Suite, s.Mirror, strings.Join(s.Packages, ","))
	return s.Suite + "-" + hex.EncodeToString(h.Sum(nil))[:12]
}

// SuiteOf reads the suite from a topology image name such as debian/bookworm.
func SuiteOf(image string) string {
	if i := strings.LastIndex(image, "/"); i >= 0 {
		return image[i+1:]
	}
	return image
}

// Image is a built image in the cache.
type Image struct {
	Key       string        `json:"key"`
	Spec      Spec          `json:"spec"`
	RootFS    string        `json:"rootfs"`
	Size      int64         `json:"size"`
	BuiltAt   time.Time     `json:"built_at"`
	BuildTime time.Duration `json:"build_time"`
	Builder   string        `json:"builder"`
}

// Cache is a folder of built images.
type Cache struct {
	Dir string
	// Userns, for a user that is not root, is its own user namespace:
	// images are bootstrapped in it (mmdebstrap --mode=unshare), owned by
	// its ids, as the user's unprivileged nodes see them, and finished and
	// removed from it. No layers, no shared files, no shared .debs: those
	// need root's hand on the files.
	Userns *userns.Map
	// Shared, for a user, is root's cache: an image it lacks is unpacked
	// from there when root shared it (usershare.go). "" builds its own.
	Shared string
	// ShareGID, for root, is the lab group's: each image root uses is
	// shared with its members. 0 shares nothing.
	ShareGID int

	logf func(line string) // this build's progress lines (set by Ensure)
}

func (c *Cache) imageDir(key string) string { return filepath.Join(c.Dir, "images", key) }
func (c *Cache) debDir() string             { return filepath.Join(c.Dir, "debs") }

// Get returns a built image, or os.ErrNotExist.
func (c *Cache) Get(key string) (*Image, error) {
	b, err := os.ReadFile(filepath.Join(c.imageDir(key), "image.json"))
	if err != nil {
		return nil, err
	}
	var img Image
	if err := json.Unmarshal(b, &img); err != nil {
		return nil, fmt.Errorf("image %s: %w", key, err)
	}
	img.RootFS = filepath.Join(c.imageDir(key), "rootfs")
	return &img, nil
}

// List returns every built image.
func (c *Cache) List() ([]*Image, error) {
	entries, err := os.ReadDir(filepath.Join(c.Dir, "images"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*Image
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if img, err := c.Get(e.Name()); err == nil {
			out = append(out, img)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].BuiltAt.Before(out[j].BuiltAt) })
	return out, nil
}

// builtOf is the root filesystems of the built images of a suite.
func (c *Cache) builtOf(suite string) []string {
	imgs, _ := c.List()
	var out []string
	for i := len(imgs) - 1; i >= 0; i-- { // newest first: most like the next
		if imgs[i].Spec.Suite == suite {
			out = append(out, imgs[i].RootFS)
		}
	}
	return out
}

// Remove deletes a built image. Nodes made from it keep working only while
// it exists: callers check that no lab uses it.
func (c *Cache) Remove(key string) error {
	unlock, err := c.lock(context.Background(), key)
	if err != nil {
		return err
	}
	defer unlock()
	dir := c.imageDir(key)
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("image %s: %w", key, err)
	}
	// Rename first so a half-removed image is never taken for a built one.
	trash := filepath.Join(c.Dir, "images", fmt.Sprintf(".rm-%s-%d", key, os.Getpid()))
	if err := os.Rename(dir, trash); err != nil {
		return err
	}
	return c.removeTree(trash)
}

// PruneDebs empties the .deb download cache.
func (c *Cache) PruneDebs() error { return os.RemoveAll(c.debDir()) }

// lock takes the per-key build lock, waiting for another builder.
func (c *Cache) lock(ctx context.Context, key string) (func(), error) {
	dir := filepath.Join(c.Dir, "images")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return fsx.Lock(ctx, filepath.Join(dir, "."+key+".lock"))
}

// Ensure returns the image for spec, building it when it is not cached.
// log, if not nil, receives the build's progress lines.
func (c *Cache) Ensure(ctx context.Context, spec Spec, log func(line string)) (*Image, error) {
	b := *c
	b.logf = log
	img, err := b.ensure(ctx, spec.Normalize())
	if err == nil && c.ShareGID > 0 && c.Userns == nil {
		if err := b.shareWithUsers(ctx, img); err != nil {
			b.log(img.Key, "%v (users build their own)", err)
		}
	}
	return img, err
}

func (c *Cache) ensure(ctx context.Context, spec Spec) (*Image, error) {
	key := spec.Key()
	if img, err := c.Get(key); err == nil {
		return img, nil
	}
	unlock, err := c.lock(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("image %s: lock: %w", key, err)
	}
	defer unlock()
	// Someone else may have built it while we waited.
	if img, err := c.Get(key); err == nil {
		return img, nil
	}
	return c.build(ctx, key, spec)
}

func (c *Cache) log(_, format string, args ...any) {
	if c.logf != nil {
		c.logf(fmt.Sprintf(format, args...))
	}
}

func (c *Cache) build(ctx context.Context, key string, spec Spec) (*Image, error) {
	imagesDir := filepath.Join(c.Dir, "images")
	// Builds a killed lab left behind: stop what still runs, unmount, remove.
	if err := c.cleanStale(key); err != nil {
		return nil, fmt.Errorf("image %s: %w", key, err)
	}
	tmp := filepath.Join(imagesDir, fmt.Sprintf(".build-%s-%d", key, os.Getpid()))
	if err := RemoveTree(tmp); err != nil {
		return nil, err
	}
	rootfs := filepath.Join(tmp, "rootfs")
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		return nil, err
	}
	defer func() {
		if err := c.removeTree(tmp); err != nil {
			c.log(key, "cleanup: %v", err)
		}
	}()
	if err := os.MkdirAll(c.debDir(), 0o755); err != nil {
		return nil, err
	}
	logPath := filepath.Join(imagesDir, key+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()

	start := time.Now()
	builder, err := c.populate(ctx, key, spec, tmp, logf, logPath)
	if err != nil {
		return nil, err
	}
	if err := c.finish(ctx, rootfs); err != nil {
		return nil, fmt.Errorf("image %s: finish: %w", key, err)
	}
	if c.Userns == nil {
		saved, err := share(rootfs, c.builtOf(spec.Suite))
		if err != nil {
			return nil, fmt.Errorf("image %s: share with the other images: %w", key, err)
		}
		if saved >= 1<<20 {
			c.log(key, "shares %dM with the images built before it", saved>>20)
		}
	}
	img := &Image{Key: key, Spec: spec, BuiltAt: time.Now().UTC(), BuildTime: time.Since(start), Builder: builder, Size: duSize(rootfs)}
	b, _ := json.MarshalIndent(img, "", "  ")
	if err := os.WriteFile(filepath.Join(tmp, "image.json"), b, 0o644); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, c.imageDir(key)); err != nil {
		return nil, err
	}
	c.log(key, "built in %.1fs", img.BuildTime.Seconds())
	return c.Get(key)
}

// populate fills tmp/rootfs: as a layer over the image of spec's base when
// it can (layer.go), else bootstrapped from scratch. It returns what built
// it.
func (c *Cache) populate(ctx context.Context, key string, spec Spec, tmp string, logf io.Writer, logPath string) (string, error) {
	rootfs := filepath.Join(tmp, "rootfs")
	if ok, err := c.unpackShared(ctx, key, rootfs); ok || err != nil {
		return "root's shared cache", err
	}
	if base, ok := layerBase(spec); ok && c.Userns == nil {
		err := c.buildLayer(ctx, key, spec, base, tmp, logf)
		if err == nil {
			return "mmdebstrap+apt", nil
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		// A layer that fails (a mirror that moved on, a package whose
		// scripts need a booted system) is built the old way.
		c.log(key, "layer over %s failed, bootstrapping from scratch: %v", base.Key(), err)
		if err := RemoveTree(tmp); err != nil {
			return "", err
		}
		if err := os.MkdirAll(rootfs, 0o755); err != nil {
			return "", err
		}
	}
	cmd, builder := c.command(ctx, spec, rootfs)
	c.log(key, "building with %s: %s %s", builder, spec.Suite, strings.Join(spec.Packages, " "))
	if err := c.run(key, cmd, logf, filepath.Join(tmp, "builder.pgid")); err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fmt.Errorf("image %s: %s failed: %w (full log: %s)\n%s", key, builder, err, logPath, tail(logPath, 15))
	}
	if builder == "mmdebstrap" && c.Userns == nil {
		// The package lists stay beside the image, for layers over it.
		if err := keepLists(rootfs, filepath.Join(tmp, "lists")); err != nil {
			return "", fmt.Errorf("image %s: %w", key, err)
		}
	}
	return builder, nil
}

// command returns the bootstrap command: mmdebstrap where installed,
// debootstrap otherwise.
func (c *Cache) command(ctx context.Context, spec Spec, rootfs string) (*exec.Cmd, string) {
	include := strings.Join(spec.Packages, ",")
	debs := c.debDir()
	if c.Userns != nil {
		return c.userCommand(ctx, spec, rootfs), "mmdebstrap"
	}
	if _, err := exec.LookPath("mmdebstrap"); err == nil {
		args := []string{
			"--mode=root", "--variant=minbase", "--format=directory",
			"--skip=download/empty", "--skip=cleanup/apt/lists",
			// Hard-link cached .debs in (same filesystem) so apt downloads only what is new.
			"--setup-hook=mkdir -p \"$1/var/cache/apt/archives\" && find " + shell.Quote(debs) + " -maxdepth 1 -name '*.deb' -exec ln -f -t \"$1/var/cache/apt/archives/\" {} + 2>/dev/null || true",
			"--customize-hook=find \"$1/var/cache/apt/archives\" -maxdepth 1 -name '*.deb' -exec cp -n -l -t " + shell.Quote(debs) + " {} + 2>/dev/null || find \"$1/var/cache/apt/archives\" -maxdepth 1 -name '*.deb' -exec cp -n -t " + shell.Quote(debs) + " {} +",
			"--customize-hook=rm -f \"$1\"/var/cache/apt/archives/*.deb",
		}
		if include != "" {
			args = append(args, "--include="+include)
		}
		args = append(args, spec.Suite, rootfs, spec.Mirror)
		return exec.CommandContext(ctx, "mmdebstrap", args...), "mmdebstrap"
	}
	args := []string{"--variant=minbase", "--cache-dir=" + debs}
	if include != "" {
		args = append(args, "--include="+include)
	}
	args = append(args, spec.Suite, rootfs, spec.Mirror)
	return exec.CommandContext(ctx, "debootstrap", args...), "debootstrap"
}

// run runs the builder, logging everything and passing its progress lines on.
func (c *Cache) run(key string, cmd *exec.Cmd, logf io.Writer, pgidFile string) error {
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	cmd.Stderr = pw
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C")
	// The builder dies with lab (even on kill -9): Pdeathsig fires when the
	// thread that started it ends, so that thread stays locked until Wait.
	// Its own process group lets a later lab stop what it left running.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			if strings.HasPrefix(line, "I: ") {
				c.log(key, "%s", strings.TrimPrefix(line, "I: "))
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	err := cmd.Start()
	if err == nil {
		_ = os.WriteFile(pgidFile, []byte(strconv.Itoa(cmd.Process.Pid)), 0o644)
		err = cmd.Wait()
	}
	pw.Close()
	<-done
	return err
}

// cleanStale removes builds of key that a killed lab left: their builder's
// process group is killed first, then everything mounted inside is
// unmounted, then the folder is removed. The caller holds the key's lock, so
// no live lab is building it.
func (c *Cache) cleanStale(key string) error {
	stale, _ := filepath.Glob(filepath.Join(c.Dir, "images", ".build-"+key+"-*"))
	for _, dir := range stale {
		if b, err := os.ReadFile(filepath.Join(dir, "builder.pgid")); err == nil {
			if pgid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pgid > 1 && isBuilder(pgid) {
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
				for i := 0; i < 50 && isBuilder(pgid); i++ {
					time.Sleep(100 * time.Millisecond)
				}
			}
		}
		c.log(key, "removing a build left by a killed lab: %s", dir)
		if err := c.removeTree(dir); err != nil {
			return err
		}
	}
	return nil
}

// isBuilder tells whether pid is a running mmdebstrap, debootstrap or
// layer install.
func isBuilder(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && (strings.Contains(string(b), "mmdebstrap") || strings.Contains(string(b), "debootstrap") || strings.Contains(string(b), layerTag))
}

// RemoveTree removes dir after unmounting everything mounted below it (a
// bootstrap mounts /proc, /sys and /dev into its chroot). It refuses to
// remove anything while a mount remains: removing through a bind mount of
// /dev would delete the host's device nodes.
func RemoveTree(dir string) error {
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for attempt := 0; attempt < 3; attempt++ {
		mounts := mountsBelow(abs)
		if len(mounts) == 0 {
			return os.RemoveAll(abs)
		}
		for _, m := range mounts {
			_ = syscall.Unmount(m, syscall.MNT_DETACH)
		}
	}
	if m := mountsBelow(abs); len(m) > 0 {
		return fmt.Errorf("%s: still mounted: %s; not removed", abs, strings.Join(m, ", "))
	}
	return os.RemoveAll(abs)
}

// mountsBelow lists mount points at or below dir, deepest first.
func mountsBelow(dir string) []string {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		mp := strings.ReplaceAll(f[1], "\\040", " ")
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}
