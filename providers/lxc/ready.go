package lxc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/labctl/lab/internal/fsx"
	"github.com/labctl/lab/providers"
)

// A node tells the host it has booted by writing a file: lab-booted.service
// runs once systemd has reached default.target and touches BootedFile,
// once no IPv6 address is still tentative (lab turns duplicate address
// detection off, see dadOff, so this is a guard that costs one ip call; at
// most 5 s),
// which the host sees in the container's overlay upper layer (delta0) with
// a stat, no process. Asking systemd through lxc-attach costs a process per
// node per poll, a load of its own on two cores at a hundred nodes.
const BootedFile = "var/lib/lab/booted"

const bootedUnit = `# Written by lab: tells the host that this node has booted.
[Unit]
Description=lab: tell the host this node has booted
After=default.target

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'i=0; while [ $$i -lt 50 ] && ip -6 addr show tentative 2>/dev/null | grep -q inet6; do sleep 0.1; i=$$((i+1)); done; mkdir -p /var/lib/lab && : > /var/lib/lab/booted'

[Install]
WantedBy=default.target
`

// armBooted removes the mark of an earlier boot and puts the unit that
// makes it in the node's upper layer (the container is not running: the
// overlay is not mounted).
func (p *Provider) armBooted(ctx context.Context, n providers.Node) error {
	if p.rl != nil {
		return p.rl.arm(ctx, p.dir(n), p.lower(n))
	}
	// Folders made in the upper layer hide the image's in the node: they
	// are made as the image has them (owners shifted for an unprivileged
	// node, whose image is shifted too), and the files are its root's.
	own, err := p.nodeOwner(n)
	if err != nil {
		return err
	}
	return armBootedAs(filepath.Join(p.dir(n), "delta0"), own.lower, own.uid, own.gid)
}

// armBootedAs arms the mark in up, a node's upper layer over lower, with
// files owned by uid and gid (root in the node).
func armBootedAs(up, lower string, uid, gid int) error {
	if err := os.Remove(filepath.Join(up, BootedFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	units := filepath.Join(up, "etc/systemd/system")
	if err := fsx.MkdirLike(lower, up, "etc/systemd/system/default.target.wants"); err != nil {
		return err
	}
	unit := filepath.Join(units, "lab-booted.service")
	if err := fsx.WriteAtomic(unit, []byte(bootedUnit), 0o644); err != nil {
		return err
	}
	if err := os.Lchown(unit, uid, gid); err != nil {
		return err
	}
	link := filepath.Join(units, "default.target.wants", "lab-booted.service")
	if _, err := os.Lstat(link); err == nil {
		return nil
	}
	if err := os.Symlink("/etc/systemd/system/lab-booted.service", link); err != nil {
		return err
	}
	return os.Lchown(link, uid, gid)
}

// waitBooted waits for the node's mark. It looks at the node's state every
// ten polls (in this process, through liblxc's command socket) to say when
// the node stopped instead, asks systemd every hundred whether boot is stuck
// in an emergency shell, and once more when time runs out, so the error
// says where boot is.
func (p *Provider) waitBooted(ctx context.Context, n providers.Node) error {
	mark := filepath.Join(p.dir(n), "delta0", BootedFile)
	poll := p.BootPoll
	if poll <= 0 {
		poll = 50 * time.Millisecond
	}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for i := 0; ; i++ {
		if _, err := os.Stat(mark); err == nil {
			return nil
		}
		if i%10 == 9 {
			if st, _ := p.State(ctx, n); st == providers.Stopped {
				return fmt.Errorf("node %s: boot: the node stopped%s", n.Name, p.logTail(n))
			}
		}
		if i%100 == 99 { // a slow boot: is systemd stuck in an emergency shell?
			if s := p.systemdSays(n); s == "maintenance" || s == "stopping" {
				return fmt.Errorf("node %s: boot: systemd says %q", n.Name, s)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %s: boot: %w (systemd: %s)", n.Name, ctx.Err(), p.systemdSays(n))
		case <-tick.C:
		}
	}
}

// systemdSays is what systemd in the node reports about boot, for an error.
func (p *Provider) systemdSays(n providers.Node) string {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var out strings.Builder
	_, err := p.Exec(ctx, n, []string{"systemctl", "is-system-running"}, providers.ExecIO{Stdout: &out})
	if s := strings.TrimSpace(out.String()); s != "" {
		return s
	}
	if err != nil {
		return "no answer: " + err.Error()
	}
	return "no answer"
}
