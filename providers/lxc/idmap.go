package lxc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/labctl/lab/providers"
)

// IDMap is the range of host ids that an unprivileged node's ids 0…Count-1
// are: root in the node is host uid UID, gid GID.
type IDMap struct {
	UID, GID, Count uint32
}

// idCount is how many ids a node's user namespace maps: all that a Debian
// system uses (nobody is 65534).
const idCount = 65536

// firstID is where lab allocates root's range when the host has none
// (where shadow's useradd starts its subordinate ranges too).
const firstID = 100000

// HostIDMap reads root's subordinate id ranges from /etc/subuid and
// /etc/subgid, adding one to each file that has none for root.
func HostIDMap() (IDMap, error) {
	uid, err := subordinate("/etc/subuid")
	if err != nil {
		return IDMap{}, err
	}
	gid, err := subordinate("/etc/subgid")
	if err != nil {
		return IDMap{}, err
	}
	return IDMap{UID: uid, GID: gid, Count: idCount}, nil
}

// subordinate returns the start of root's range in a subid file (a line
// root:START:COUNT with COUNT ≥ idCount), appending a range above every
// other one when root has none. The file is locked while read and written:
// two labs starting at once add one range.
func subordinate(path string) (uint32, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return 0, fmt.Errorf("user namespaces: %w", err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return 0, fmt.Errorf("user namespaces: lock %s: %w", path, err)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	content, err := io.ReadAll(f)
	if err != nil {
		return 0, fmt.Errorf("user namespaces: %s: %w", path, err)
	}
	start, next := parseSubIDs(string(content))
	if start != 0 {
		return start, nil
	}
	line := fmt.Sprintf("root:%d:%d\n", next, idCount)
	if len(content) > 0 && content[len(content)-1] != '\n' {
		line = "\n" + line
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		return 0, err
	}
	if _, err := f.WriteString(line); err != nil {
		return 0, fmt.Errorf("user namespaces: add root's range to %s: %w", path, err)
	}
	return next, nil
}

// parseSubIDs returns the start of root's range (0: none) and the first id
// above every range the file holds (at least firstID), as useradd would.
func parseSubIDs(content string) (root, next uint32) {
	next = firstID
	for _, line := range strings.Split(content, "\n") {
		parts := strings.Split(strings.TrimSpace(line), ":")
		if len(parts) != 3 || strings.HasPrefix(parts[0], "#") {
			continue
		}
		start, err1 := strconv.ParseUint(parts[1], 10, 32)
		count, err2 := strconv.ParseUint(parts[2], 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		if (parts[0] == "root" || parts[0] == "0") && count >= idCount && root == 0 && start > 0 {
			root = uint32(start)
		}
		if end := start + count; end > uint64(next) && end < 1<<32-idCount {
			next = uint32(end)
		}
	}
	return root, next
}

// owner is who root in a node is on the host, and the node's lower layer.
type owner struct {
	uid, gid int
	lower    string
}

// nodeOwner reads them from the node's config (lxc.idmap, lxc.rootfs.path):
// what the node was made as, whatever the lab file says now.
func (p *Provider) nodeOwner(n providers.Node) (owner, error) {
	b, err := os.ReadFile(filepath.Join(p.dir(n), "config"))
	if errors.Is(err, os.ErrNotExist) {
		return owner{}, nil // no container config: nothing maps ids
	}
	if err != nil {
		return owner{}, fmt.Errorf("node %s: %w", n.Name, err)
	}
	var o owner
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch {
		case k == "lxc.idmap":
			var kind string
			var inside, host, count int
			if _, err := fmt.Sscanf(v, "%s %d %d %d", &kind, &inside, &host, &count); err == nil && inside == 0 {
				if kind == "u" {
					o.uid = host
				} else if kind == "g" {
					o.gid = host
				}
			}
		case k == "lxc.rootfs.path" && strings.HasPrefix(v, "overlay:"):
			if parts := strings.Split(strings.TrimPrefix(v, "overlay:"), ":"); len(parts) == 2 {
				o.lower = parts[0]
			}
		}
	}
	return o, nil
}
