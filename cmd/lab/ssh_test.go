package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/labctl/lab/labtest"
)

// ssh: true gives nodes sshd and the lab's key; lab inventory and lab
// ssh-config reach them; an ansible step provisions through them.
func TestIntegrationSSHInventoryAnsible(t *testing.T) {
	labtest.Integration(t)
	for _, bin := range []string{"ansible", "ssh"} {
		_, err := exec.LookPath(bin)
		require.NoError(t, err, "make setup installs ansible-core and openssh-client")
	}
	l := labtest.New(t, "it-ssh", map[string]string{
		"lab.yaml": `
name: it-ssh
networks: [{name: lan, subnet: 10.97.11.0/24}]
defaults: {ssh: true}
nodes:
  - role: db
  - role: web
    count: 2
    after: [db]
    ports: ["18022:22", {host: 18023, port: 22, node: web2}]
    provision:
      - ansible: site.yml
`,
		"site.yml": `
- hosts: all
  gather_facts: false
  tasks:
    - name: facts reach playbooks as host variables
      copy:
        dest: /root/from-ansible
        content: "{{ lab_node }} sees db at {{ lab_role_db_ips }}\n"
`,
	})
	_, stderr, code := l.Run("up")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stderr, "ansible site.yml")
	o, c := l.Exec("web2", "cat", "/root/from-ansible")
	require.Equal(t, 0, c)
	assert.Equal(t, "web2 sees db at 10.97.11.11\n", o)
	_, c = l.Exec("db1", "test", "-f", "/root/from-ansible")
	assert.NotEqual(t, 0, c, "the playbook ran on a node outside the role")

	// Each node has host keys of its own.
	k1, _ := l.Exec("web1", "cat", "/etc/ssh/ssh_host_ed25519_key.pub")
	k2, _ := l.Exec("web2", "cat", "/etc/ssh/ssh_host_ed25519_key.pub")
	assert.NotEmpty(t, k1)
	assert.NotEqual(t, k1, k2)

	// ansible -i $(lab inventory --path) all -m ping, as the README says.
	ping := exec.Command("bash", "-c", "ansible -i $("+l.Bin+" inventory --path) all -m ping")
	ping.Dir = l.Dir
	ping.Env = append(os.Environ(), "LC_ALL=C.UTF-8", "ANSIBLE_NOCOLOR=1")
	out, err := ping.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, 3, strings.Count(string(out), "SUCCESS"), "%s", out)

	ini := filepath.Join(l.Dir, "hosts.ini")
	require.NoError(t, os.WriteFile(ini, []byte(l.MustRun("inventory", "--ini")), 0o644))
	list := exec.Command("ansible-inventory", "-i", ini, "--graph")
	list.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
	out, err = list.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "@web:")
	assert.Contains(t, string(out), "web2")

	// Port forwards from the host's loopback: to the role's first node, or
	// to the node named.
	key := filepath.Join(l.Dir, ".lab", "ssh", "id_ed25519")
	sshPort := func(port string) (string, error) {
		out, err := exec.Command("ssh", "-i", key, "-p", port, "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
			"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "root@127.0.0.1", "hostname").CombinedOutput()
		return string(out), err
	}
	out2, err := sshPort("18022")
	require.NoError(t, err, out2)
	assert.Equal(t, "web1\n", out2)
	out2, err = sshPort("18023")
	require.NoError(t, err, out2)
	assert.Equal(t, "web2\n", out2)
	st := l.MustRun("status")
	assert.Contains(t, st, "127.0.0.1:18023 → web2")
	// halt removes forwards; up brings them back.
	l.MustRun("halt")
	_, err = sshPort("18022")
	assert.Error(t, err, "a forward survived halt")
	l.MustRun("up")
	out2, err = sshPort("18022")
	require.NoError(t, err, out2)

	cfg := filepath.Join(l.Dir, "ssh.cfg")
	require.NoError(t, os.WriteFile(cfg, []byte(l.MustRun("ssh-config")), 0o644))
	for _, host := range []string{"db1", "web1.it-ssh.lab"} {
		out, err := exec.Command("ssh", "-F", cfg, "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", host, "hostname").CombinedOutput()
		require.NoError(t, err, "ssh %s: %s", host, out)
		assert.Equal(t, strings.SplitN(host, ".", 2)[0]+"\n", string(out))
	}
}

// A host port that another program holds is a problem with the lab file:
// exit 2, naming the field.
func TestIntegrationPortTaken(t *testing.T) {
	labtest.Integration(t)
	ln, err := net.Listen("tcp", "127.0.0.1:18024")
	require.NoError(t, err)
	defer ln.Close()
	l := labtest.New(t, "it-port", map[string]string{"lab.yaml": `
name: it-port
networks: [{name: lan, subnet: 10.97.12.0/24}]
nodes:
  - role: web
    ports: ["18024:80"]
`})
	_, stderr, code := l.Run("up")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "lab.yaml:6: nodes[0].ports[0]: host port 127.0.0.1:18024 is taken by another program")
	assert.Empty(t, l.Status()["web1"].ID, "nothing is made when the file is wrong")
}
