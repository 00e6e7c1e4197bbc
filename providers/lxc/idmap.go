package lxc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/labctl/lab/host"
	"github.com/labctl/lab/providers"
)

// IDMap is the range of host ids that an unprivileged node's ids 0…Count-1
// are: root in the node is host uid UID, gid GID.
type IDMap struct {
	UID, GID, Count uint32
}

// HostIDMap reads root's subordinate id ranges from /etc/subuid and
// /etc/subgid, adding one to each file that has none for root.
func HostIDMap() (IDMap, error) {
	uid, err := host.SubIDs("/etc/subuid", "root", "0")
	if err != nil {
		return IDMap{}, err
	}
	gid, err := host.SubIDs("/etc/subgid", "root", "0")
	if err != nil {
		return IDMap{}, err
	}
	return IDMap{UID: uid, GID: gid, Count: host.IDCount}, nil
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
