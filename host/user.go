package host

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// Group is the group of the users that may run labs without root.
const Group = "lab"

// A User is one that lab host setup --user grants what running labs
// without root needs, as root, once:
//
//   - membership of the lab group;
//   - a range of IDCount subordinate uids and gids (/etc/subuid,
//     /etc/subgid), which root in the user's nodes maps to, through the
//     setuid newuidmap and newgidmap of Debian's uidmap;
//   - without systemd as PID 1, a cgroup of each v1 hierarchy owned by the
//     user (lab-NAME), which the user's lab joins and starts its nodes'
//     cgroups under; the kernel forgets it at reboot. With systemd, the
//     user's session is a delegated cgroup already;
//   - for VM nodes, /dev/net/tun open to all and group kvm (vmDevices).
type User struct {
	Name     string
	UID, GID int
	Groups   []string // gids
	Etc      string   // where passwd's files are: /etc
	Root     string   // "": this machine; tests set a folder that stands for /
}

// LookupUser finds a user that may be set up: any but root.
func LookupUser(name string) (*User, error) {
	u, err := user.Lookup(name)
	var unknown user.UnknownUserError
	if errors.As(err, &unknown) {
		return nil, fmt.Errorf("user %q: no such user on this machine", name)
	}
	if err != nil {
		return nil, fmt.Errorf("user %q: %w", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if uid == 0 {
		return nil, errors.New("root runs labs as it is: --user names a user that is not root")
	}
	groups, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("user %s: %w", name, err)
	}
	return &User{Name: u.Username, UID: uid, GID: gid, Groups: groups, Etc: "/etc"}, nil
}

var safeName = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)

// CgroupName is the name of the user's cgroup in each hierarchy.
func (u *User) CgroupName() string {
	if safeName.MatchString(u.Name) {
		return "lab-" + u.Name
	}
	return "lab-u" + strconv.Itoa(u.UID)
}

// HelperPath is where the network helper (cmd/lab-net) is installed:
// root:lab, setuid, run by members of the group only.
const HelperPath = "/usr/local/libexec/lab/lab-net"

// Setup grants what the user needs, saying each step on out, and installs
// the network helper from helper (a built cmd/lab-net). It changes only
// what is missing, so running it again (after a reboot: the cgroups) is
// safe.
func (u *User) Setup(out io.Writer, helper string) error {
	if err := u.joinGroup(out); err != nil {
		return err
	}
	if err := installHelper(out, helper); err != nil {
		return err
	}
	for _, f := range []string{"subuid", "subgid"} {
		if err := u.subIDs(out, f); err != nil {
			return err
		}
	}
	for _, tool := range []string{"newuidmap", "newgidmap"} {
		if err := setuidTool(tool); err != nil {
			return err
		}
	}
	fmt.Fprintln(out, "user namespaces: newuidmap and newgidmap are installed, setuid root")
	if err := u.vmDevices(out); err != nil {
		return err
	}
	return u.makeCgroups(out)
}

// Remove takes back the group and the cgroups; the id ranges stay, since
// other tools (podman, lxc-usernsexec) use them too.
func (u *User) Remove(out io.Writer) error {
	if err := u.removeCgroups(out); err != nil {
		return err
	}
	g, err := user.LookupGroup(Group)
	if err == nil && slices.Contains(u.Groups, g.Gid) {
		if err := run("gpasswd", "-d", u.Name, Group); err != nil {
			return err
		}
		fmt.Fprintf(out, "group %s: removed %s\n", Group, u.Name)
	}
	fmt.Fprintf(out, "ids: %s keeps its ranges in %s/subuid and %s/subgid (usermod --del-subuids removes them)\n", u.Name, u.Etc, u.Etc)
	return nil
}

func (u *User) joinGroup(out io.Writer) error {
	g, err := user.LookupGroup(Group)
	if err != nil {
		if err := run("groupadd", "--system", Group); err != nil {
			return err
		}
		fmt.Fprintf(out, "group %s: made\n", Group)
		if g, err = user.LookupGroup(Group); err != nil {
			return err
		}
	}
	if slices.Contains(u.Groups, g.Gid) {
		fmt.Fprintf(out, "group %s: %s is a member\n", Group, u.Name)
		return nil
	}
	if err := run("usermod", "-a", "-G", Group, u.Name); err != nil {
		return err
	}
	u.Groups = append(u.Groups, g.Gid)
	fmt.Fprintf(out, "group %s: added %s (from the next login)\n", Group, u.Name)
	return nil
}

// subIDs gives the user a range in /etc/subuid or /etc/subgid.
func (u *User) subIDs(out io.Writer, file string) error {
	path := u.Etc + "/" + file
	owners := []string{u.Name, strconv.Itoa(u.UID)}
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	had, _ := ParseSubIDs(string(b), owners...)
	start, err := SubIDs(path, owners...)
	if err != nil {
		return err
	}
	what := "has"
	if had == 0 {
		what = "added"
	}
	fmt.Fprintf(out, "ids: %s %s %d-%d in %s\n", u.Name, what, start, start+IDCount-1, path)
	return nil
}

// installHelper copies the helper to HelperPath, root:lab, mode 4750,
// unless the same file is there.
func installHelper(out io.Writer, src string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("network helper: %w (make build makes bin/lab-net beside bin/lab)", err)
	}
	g, err := user.LookupGroup(Group)
	if err != nil {
		return err
	}
	gid, _ := strconv.Atoi(g.Gid)
	if old, err := os.ReadFile(HelperPath); err == nil && string(old) == string(b) {
		if fi, err := os.Stat(HelperPath); err == nil && fi.Mode() == helperMode && owned(fi, 0, gid) {
			fmt.Fprintf(out, "network helper: %s is installed\n", HelperPath)
			return nil
		}
	}
	if err := os.MkdirAll(filepath.Dir(HelperPath), 0o755); err != nil {
		return err
	}
	tmp := HelperPath + ".new"
	_ = os.Remove(tmp)
	if err := os.WriteFile(tmp, b, 0o700); err != nil {
		return err
	}
	// Group first, then the setuid bit: chown clears it.
	if err := os.Chown(tmp, 0, gid); err != nil {
		return err
	}
	if err := os.Chmod(tmp, helperMode); err != nil {
		return err
	}
	if err := os.Rename(tmp, HelperPath); err != nil {
		return err
	}
	fmt.Fprintf(out, "network helper: installed %s (root:%s, setuid, for the group only)\n", HelperPath, Group)
	return nil
}

const helperMode = os.ModeSetuid | 0o750

func owned(fi os.FileInfo, uid, gid int) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == uid && int(st.Gid) == gid
}

// setuidTool checks that a tool is installed and setuid root.
func setuidTool(name string) error {
	p, err := exec.LookPath(name)
	if err == nil {
		var fi os.FileInfo
		if fi, err = os.Stat(p); err == nil && fi.Mode()&os.ModeSetuid == 0 {
			err = errors.New("not setuid")
		}
	}
	if err != nil {
		return fmt.Errorf("user namespaces: %s: %v: install Debian's uidmap (apt-get install uidmap, or make setup)", name, err)
	}
	return nil
}

// run runs a shadow tool, its output in the error.
func run(name string, args ...string) error {
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
