package lxd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/labctl/lab/providers"
)

// A node's disk, as lab's snapshots keep it, is its instance as LXD
// exports it (lxc export --instance-only: the root file system and its
// configuration, no LXD snapshot), uncompressed (compressing costs a
// member's cores more than the bytes cost a disk). It is a file, so lab
// snapshot export, import, clone and lab test --from carry it as they carry
// an LXC node's folder. LXD's own snapshots would be faster on ZFS or
// btrfs, but live in the instance: lab snapshot rm, destroy and a fresh
// folder's lab test --from could not reach them.

// diskFile is the export's name in a node's snapshot folder.
const diskFile = "instance.tar"

// SaveDisk exports the node's instance (stopped, or frozen by lab) into
// dir.
func (p *Provider) SaveDisk(ctx context.Context, n providers.Node, dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if _, err := p.c.run(ctx, nil, "export", p.c.where(instance(n)), filepath.Join(dir, diskFile), "--instance-only", "--compression", "none", "--quiet"); err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	return nil
}

// RestoreDisk replaces the node's instance (made by Create, stopped) by
// the one saved in dir, on the same member, with the configuration lab
// gives n now (its addresses, its name's keys): the saved disk, lab's
// node.
func (p *Provider) RestoreDisk(ctx context.Context, n providers.Node, dir string) error {
	file := filepath.Join(dir, diskFile)
	if _, err := os.Stat(file); err != nil {
		return fmt.Errorf("node %s: no saved instance in %s", n.Name, dir)
	}
	var cur struct {
		Location string `json:"location"`
	}
	if err := p.c.query(ctx, "GET", "/1.0/instances/"+instance(n), nil, &cur); err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	if _, err := p.checkOwner(ctx, n); err != nil {
		return err
	}
	if _, err := p.c.run(ctx, nil, "delete", "--force", p.c.where(instance(n))); err != nil && !notFound(err) {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	args := []string{"import", file, instance(n), "--quiet"}
	if p.c.remote != "" {
		args = append([]string{"import", p.c.remote + ":"}, args[1:]...)
	}
	if _, err := p.c.run(ctx, nil, args...); err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	var in struct {
		Location     string            `json:"location"`
		Architecture string            `json:"architecture"`
		Config       map[string]string `json:"config"`
	}
	if err := p.c.query(ctx, "GET", "/1.0/instances/"+instance(n), nil, &in); err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	// LXD imports on the member lab talks to: back where the node was
	// (its pinning, or where the scheduler had put it).
	if cur.Location != "" && cur.Location != "none" && in.Location != cur.Location {
		if _, err := p.c.run(ctx, nil, "move", p.c.where(instance(n)), "--target", cur.Location); err != nil {
			return fmt.Errorf("node %s: back to member %s: %w", n.Name, cur.Location, err)
		}
	}
	return p.reconfigure(ctx, n, in.Architecture, in.Config)
}

// TakeDisk is RestoreDisk: the export is read, not moved.
func (p *Provider) TakeDisk(ctx context.Context, n providers.Node, dir string) error {
	return p.RestoreDisk(ctx, n, dir)
}

// reconfigure gives an imported instance lab's configuration for n, and
// keeps LXD's own state of its disk (volatile.*: how its files are
// shifted) and, for the same node, its MACs (its neighbours' caches keep
// them); a copy under another name gets new ones.
func (p *Provider) reconfigure(ctx context.Context, n providers.Node, arch string, saved map[string]string) error {
	req := createRequest(n)
	config := req["config"].(map[string]string)
	sameNode := saved["user.lab.node"] == n.Name
	for k, v := range saved {
		if !strings.HasPrefix(k, "volatile.") {
			continue
		}
		if strings.HasSuffix(k, ".hwaddr") && !sameNode {
			continue
		}
		config[k] = v
	}
	body := map[string]any{"architecture": arch, "config": config, "devices": req["devices"], "profiles": []string{"default"}}
	if err := p.c.query(ctx, "PUT", "/1.0/instances/"+instance(n), body, nil); err != nil {
		return fmt.Errorf("node %s: configuration: %w", n.Name, err)
	}
	return nil
}
