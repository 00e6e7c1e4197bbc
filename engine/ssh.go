package engine

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/labctl/lab/internal/fsx"
	"github.com/labctl/lab/provision"

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
func (c *call) ensureKey() (string, error) {
	if !wantsSSH(c.top) {
		return "", nil
	}
	ctx, top := c.ctx, c.top
	key := c.e.KeyPath()
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
func (c *call) writeHostFiles() error {
	_, err := c.e.WriteHostFiles(c.lab)
	return err
}

// WriteHostFiles writes the lab's Ansible inventories and OpenSSH config
// into .lab (the one place they are written) and returns their paths by name.
func (e *Engine) WriteHostFiles(lab *topology.Lab) (map[string]string, error) {
	key := ""
	if _, err := os.Stat(e.KeyPath()); err == nil {
		key = e.KeyPath()
	}
	if err := os.MkdirAll(e.Store.Dir, 0o755); err != nil {
		return nil, err
	}
	paths := map[string]string{}
	for name, content := range provision.HostFiles(lab, key) {
		p := filepath.Join(e.Store.Dir, name)
		if err := fsx.WriteAtomic(p, []byte(content), 0o644); err != nil {
			return nil, err
		}
		paths[name] = p
	}
	return paths, nil
}

// publicKey is the lab's public key for a node with ssh: true ("" for one
// without).
func (c *call) publicKey(n topology.Node) (string, error) {
	if !n.Spec.SSHEnabled() {
		return "", nil
	}
	pub, err := os.ReadFile(c.e.KeyPath() + ".pub")
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("node %s: no SSH key in %s", n.Name, filepath.Dir(c.e.KeyPath()))
	}
	return string(pub), err
}
