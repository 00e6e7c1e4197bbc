package host

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
)

// Self is the user lab runs as, when that is not root, as lab host setup
// made it.
func Self() (*User, error) {
	u, err := user.Current()
	if err != nil {
		return nil, err
	}
	return LookupUser(u.Username)
}

// Range is the start of the user's subordinate uids and gids: root in its
// nodes. It reads /etc/subuid and /etc/subgid and changes nothing.
func (u *User) Range() (uid, gid uint32, err error) {
	owners := []string{u.Name, strconv.Itoa(u.UID)}
	for i, f := range []string{"subuid", "subgid"} {
		b, err := os.ReadFile(u.Etc + "/" + f)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return 0, 0, err
		}
		start, _ := ParseSubIDs(string(b), owners...)
		if start == 0 {
			return 0, 0, fmt.Errorf("user %s has no range of %d ids in %s/%s: run sudo lab host setup --user %s", u.Name, IDCount, u.Etc, f, u.Name)
		}
		if i == 0 {
			uid = start
		} else {
			gid = start
		}
	}
	return uid, gid, nil
}

// JoinCgroups moves lab's process into the user's cgroups (one per v1
// hierarchy), under which liblxc makes its nodes'. With systemd as PID 1
// the user's session is delegated already: nothing to do.
func (u *User) JoinCgroups() error {
	if u.Systemd() {
		return nil
	}
	dirs, err := u.CgroupDirs()
	if err != nil {
		return err
	}
	pid := []byte(strconv.Itoa(os.Getpid()))
	for _, d := range dirs {
		if err := os.WriteFile(d+"/cgroup.procs", pid, 0); err != nil {
			return fmt.Errorf("cgroups: join %s: %w (run sudo lab host setup --user %s; again after a reboot)", d, errors.Unwrap(err), u.Name)
		}
	}
	return nil
}
