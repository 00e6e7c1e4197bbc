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
		Location string            `json:"location"`
		Config   map[string]string `json:"config"`
	}
	if err := p.c.query(ctx, "GET", "/1.0/instances/"+instance(n), nil, &cur); err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	if err := p.owns(n, cur.Config); err != nil {
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
	return p.reconfigure(ctx, n, in.Architecture, in.Config, cur.Config)
}

// TakeDisk is RestoreDisk: the export is read, not moved.
func (p *Provider) TakeDisk(ctx context.Context, n providers.Node, dir string) error {
	return p.RestoreDisk(ctx, n, dir)
}

// reconfigure gives an imported instance lab's configuration for n, and
// keeps LXD's state of the saved disk (diskKey) and the rest of the
// replaced instance's (its MACs above all: its neighbours' ARP caches hold
// them, and a clone into a running node keeps being reached).
func (p *Provider) reconfigure(ctx context.Context, n providers.Node, arch string, saved, replaced map[string]string) error {
	req := createRequest(n)
	body := map[string]any{"architecture": arch, "config": restoredConfig(req["config"].(map[string]string), saved, replaced), "devices": req["devices"], "profiles": []string{"default"}}
	if err := p.c.query(ctx, "PUT", "/1.0/instances/"+instance(n), body, nil); err != nil {
		return fmt.Errorf("node %s: configuration: %w", n.Name, err)
	}
	return nil
}

// restoredConfig is lab's configuration for a node, with LXD's state of
// the saved disk and of the instance it replaces.
func restoredConfig(config, saved, replaced map[string]string) map[string]string {
	for k, v := range replaced {
		if strings.HasPrefix(k, "volatile.") && !diskKey(k) {
			config[k] = v
		}
	}
	for k, v := range saved {
		if diskKey(k) {
			config[k] = v
		}
	}
	return config
}

// diskKey tells the keys of LXD's state that describe an instance's disk:
// how its files are shifted, and the image it came from.
func diskKey(k string) bool {
	return strings.HasPrefix(k, "volatile.idmap.") || k == "volatile.last_state.idmap" || k == "volatile.base_image"
}
