package host

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Systemd tells whether PID 1 is systemd (it made /run/systemd/system).
func (u *User) Systemd() bool {
	_, err := os.Stat(filepath.Join(u.Root, "/run/systemd/system"))
	return err == nil
}

// Hierarchies are the mount points of the cgroup v1 hierarchies (cpu,
// memory, name=systemd…), from /proc/self/mountinfo. The unified one of a
// hybrid host is not among them: a user cannot move itself in it without
// owning the cgroup it leaves, and LXC needs no cgroup of its own there.
func (u *User) Hierarchies() ([]string, error) {
	f, err := os.Open(filepath.Join(u.Root, "/proc/self/mountinfo"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [TAGS…] - FSTYPE SOURCE SUPER
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields, fs := strings.Fields(pre), strings.Fields(post)
		if ok && len(fields) >= 5 && len(fs) >= 1 && fs[0] == "cgroup" {
			out = append(out, filepath.Join(u.Root, unescape(fields[4])))
		}
	}
	return out, sc.Err()
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &c); err == nil {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// CgroupDirs are the user's cgroups, one per v1 hierarchy.
func (u *User) CgroupDirs() ([]string, error) {
	hs, err := u.Hierarchies()
	var out []string
	for _, h := range hs {
		out = append(out, filepath.Join(h, u.CgroupName()))
	}
	return out, err
}

// delegated are the files of a v1 cgroup its owner writes: to move a
// process in, and to have children inherit cpuset's settings.
var delegated = []string{"", "cgroup.procs", "tasks", "cgroup.clone_children"}

// makeCgroups makes the user's cgroup in each v1 hierarchy, owned by the
// user; cpuset's gets its parent's cpus and memory nodes (an empty cpuset
// takes no process).
func (u *User) makeCgroups(out io.Writer) error {
	if u.Systemd() {
		fmt.Fprintln(out, "cgroups: systemd delegates a cgroup to each user session: nothing to make")
		return nil
	}
	dirs, err := u.CgroupDirs()
	if err != nil {
		return fmt.Errorf("cgroups: %w", err)
	}
	if len(dirs) == 0 {
		return errors.New("cgroups: no cgroup v1 hierarchy is mounted, and PID 1 is not systemd: lab without root needs one or the other")
	}
	for _, d := range dirs {
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("cgroups: %w", err)
		}
		if err := inheritCpuset(d); err != nil {
			return fmt.Errorf("cgroups: %w", err)
		}
		for _, f := range delegated {
			p := filepath.Join(d, f)
			if err := os.Chown(p, u.UID, u.GID); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("cgroups: %w", err)
			}
		}
	}
	fmt.Fprintf(out, "cgroups: %s owns %s in %d hierarchies (%s); the kernel forgets them at reboot: run this again after one\n",
		u.Name, u.CgroupName(), len(dirs), filepath.Join(filepath.Dir(filepath.Dir(dirs[0])), "*", u.CgroupName()))
	return nil
}

// inheritCpuset copies cpuset.cpus and cpuset.mems from the parent when
// d is a cpuset cgroup whose own are empty.
func inheritCpuset(d string) error {
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		mine, err := os.ReadFile(filepath.Join(d, f))
		if errors.Is(err, os.ErrNotExist) {
			return nil // not the cpuset hierarchy
		}
		if err != nil || strings.TrimSpace(string(mine)) != "" {
			return err
		}
		parent, err := os.ReadFile(filepath.Join(filepath.Dir(d), f))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(d, f), parent, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// removeCgroups removes the user's cgroups, with the empty ones liblxc
// and its nodes' systemd left below; where any holds a process (a node
// runs), none is touched.
func (u *User) removeCgroups(out io.Writer) error {
	dirs, err := u.CgroupDirs()
	if err != nil {
		return fmt.Errorf("cgroups: %w", err)
	}
	for _, d := range dirs {
		if busy(d) {
			return fmt.Errorf("cgroups: %s is in use (a lab of %s runs): destroy its labs first", d, u.Name)
		}
	}
	n := 0
	for _, d := range dirs {
		// What liblxc and nodes' systemd leave below, emptied: deepest first.
		var below []string
		_ = filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err == nil && e.IsDir() && p != d {
				below = append(below, p)
			}
			return nil
		})
		for i := len(below) - 1; i >= 0; i-- {
			_ = syscall.Rmdir(below[i])
		}
		err := syscall.Rmdir(d)
		switch {
		case err == nil:
			n++
		case errors.Is(err, syscall.ENOENT):
		case errors.Is(err, syscall.EBUSY), errors.Is(err, syscall.ENOTEMPTY):
			return fmt.Errorf("cgroups: %s is in use (a lab of %s runs): destroy its labs first", d, u.Name)
		default:
			return fmt.Errorf("cgroups: %w", err)
		}
	}
	fmt.Fprintf(out, "cgroups: removed %s from %d hierarchies\n", u.CgroupName(), n)
	return nil
}

// busy tells whether a cgroup or one below it holds a process.
func busy(dir string) bool {
	found := false
	_ = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || found || !e.IsDir() {
			return nil
		}
		if b, err := os.ReadFile(filepath.Join(p, "cgroup.procs")); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			found = true
			return filepath.SkipAll
		}
		return nil
	})
	return found
}
