package provision

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/labctl/lab/topology"
)

// ssh_port moves sshd, and the ssh config and inventories follow it.
func TestSSHPort(t *testing.T) {
	dir := t.TempDir()
	top, err := topology.Parse([]byte(`name: p
networks: [{name: lan, subnet: 10.9.0.0/24}]
nodes:
  - {role: adm, ssh: true, ssh_port: 2222}
  - {role: web, ssh: true}
`), filepath.Join(dir, "lab.yaml"), dir)
	require.NoError(t, err)
	lab, err := topology.Expand(top, nil)
	require.NoError(t, err)
	files, script, err := NodeFiles(lab, *lab.Node("adm1"), "ssh-ed25519 AAAA lab")
	require.NoError(t, err)
	assert.Contains(t, files["/etc/ssh/sshd_config.d/lab.conf"], "Port 2222\n")
	assert.Contains(t, script, "sport = :2222")
	files, _, err = NodeFiles(lab, *lab.Node("web1"), "ssh-ed25519 AAAA lab")
	require.NoError(t, err)
	assert.Contains(t, files["/etc/ssh/sshd_config.d/lab.conf"], "Port 22\n")
	cfg := SSHConfig(lab, "/k")
	assert.Contains(t, cfg, "Host adm1 adm1.p.lab\n  HostName 10.9.0.11\n  User root\n  Port 2222\n")
	assert.Contains(t, cfg, "Host web1 web1.p.lab\n  HostName 10.9.0.31\n  User root\n  IdentityFile")
	assert.Contains(t, InventoryINI(lab, "/k"), "ansible_port=2222")
}
