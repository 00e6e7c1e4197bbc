package host

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Reach lets the user's nodes' root (host uid id, the first of its range)
// through the folders above each path, as LXC's guide for unprivileged
// containers asks: liblxc mounts a node's image and upper folder as that
// root, which cannot enter a folder of mode 0700 such as a home made by
// Debian 12's adduser or a ~/.cache libvirtd made. A folder of the user's
// that others cannot enter gets one ACL entry, u:ID:x (setfacl, Debian's
// acl), which lets that root through and no one else; a folder of
// someone else's that it cannot enter is an error naming it.
func (u *User) Reach(id uint32, paths ...string) error {
	seen := map[string]bool{}
	for _, p := range paths {
		for dir := filepath.Dir(filepath.Clean(p)); !seen[dir]; dir = filepath.Dir(dir) { // up to /
			seen[dir] = true
			if err := u.reach(id, dir); err != nil {
				return err
			}
		}
	}
	return nil
}

func (u *User) reach(id uint32, dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || fi.Mode().Perm()&0o001 != 0 {
		return nil // others may enter
	}
	if int(st.Uid) != u.UID {
		return fmt.Errorf("%s: your nodes' root (uid %d) cannot enter it (mode %o, not yours): keep lab's folders below ones it can", dir, id, fi.Mode().Perm())
	}
	entry := "u:" + strconv.FormatUint(uint64(id), 10) + ":x" // setfacl -m: the same again changes nothing
	if out, err := exec.Command("setfacl", "-m", entry, dir).CombinedOutput(); err != nil {
		return fmt.Errorf("%s: let your nodes' root (uid %d) enter it: setfacl -m %s: %v: %s (Debian package acl)", dir, id, entry, err, strings.TrimSpace(string(out)))
	}
	return nil
}
