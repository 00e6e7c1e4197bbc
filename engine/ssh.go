package engine

import (
	"context"
	"errors"
	"fmt"
	"github.com/labctl/lab/internal/fsx"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/labctl/lab/topology"
)

// KeyPath is the lab's SSH private key (made by ssh-keygen on the first up
// of a lab with ssh: true).
func (e *Engine) KeyPath() string { return filepath.Join(e.Store.Dir, "ssh", "id_ed25519") }

func wantsSSH(top *topology.Topology) bool {
	for i := range top.Nodes {
		if top.Nodes[i].SSHEnabled() {
			return true
		}
	}
	return false
}

// ensureKey makes the lab's key pair when a role asks for SSH.
func (e *Engine) ensureKey(ctx context.Context, top *topology.Topology) (string, error) {
	if !wantsSSH(top) {
		return "", nil
	}
	key := e.KeyPath()
	if _, err := os.Stat(key + ".pub"); err == nil {
		return key, nil
	}
	if err := os.MkdirAll(filepath.Dir(key), 0o700); err != nil {
		return "", err
	}
	_ = os.Remove(key)
	out, err := exec.CommandContext(ctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "lab "+top.Name, "-f", key).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ssh key: ssh-keygen: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return key, nil
}

// writeHostFiles keeps the lab's inventories and ssh config in .lab.
func (e *Engine) writeHostFiles(lab *topology.Lab) error {
	if e.Provisioner == nil {
		return nil
	}
	key := ""
	if _, err := os.Stat(e.KeyPath()); err == nil {
		key = e.KeyPath()
	}
	for name, content := range e.Provisioner.HostFiles(lab, key) {
		if err := fsx.WriteAtomic(filepath.Join(e.Store.Dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// sshFiles are what a node with ssh: true gets: the lab's public key for
// root, and (once) host keys of its own instead of the image's.
func (e *Engine) sshFiles(n topology.Node) (map[string]string, string, error) {
	if !n.Spec.SSHEnabled() {
		return nil, "", nil
	}
	pub, err := os.ReadFile(e.KeyPath() + ".pub")
	if errors.Is(err, os.ErrNotExist) {
		return nil, "", fmt.Errorf("node %s: no SSH key in %s", n.Name, filepath.Dir(e.KeyPath()))
	}
	if err != nil {
		return nil, "", err
	}
	script := `if [ -x /usr/sbin/sshd ] && [ ! -f /etc/lab/ssh-host-keys ]; then
  rm -f /etc/ssh/ssh_host_*
  ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key
  touch /etc/lab/ssh-host-keys
  systemctl restart ssh 2>/dev/null || true
fi
chmod 700 /root/.ssh
`
	return map[string]string{"/root/.ssh/authorized_keys": string(pub)}, script, nil
}
