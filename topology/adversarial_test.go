package topology

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// YAML merge keys work as compose-file users expect: written keys win.
func TestMergeKeys(t *testing.T) {
	top, err := parse(t, `name: x
x-web: &web {count: 2, memory: 256M, packages: [nginx-light]}
nodes:
  - <<: *web
    role: web
  - <<: *web
    role: api
    count: 3
`)
	require.Error(t, err, "x-web is still an unknown top-level key")
	assert.Contains(t, err.Error(), `x-web: unknown field "x-web"`)

	top, err = parse(t, `name: x
defaults: &d {memory: 256M}
nodes:
  - {<<: [{count: 2}, {count: 5, cpus: 2}], role: web}
  - role: api
    count: 3
    <<: {count: 9, memory: 1G}
`)
	require.NoError(t, err)
	assert.Equal(t, 2, top.Nodes[0].CountOf(), "the first merged mapping wins over later ones")
	assert.Equal(t, 2, top.Nodes[0].CPUs)
	assert.Equal(t, 3, top.Nodes[1].CountOf(), "a written key wins over a merged one")
	assert.Equal(t, "1G", top.Nodes[1].Memory)
}

// Two forwards of one host port on different loopback addresses do not clash.
func TestPortsOnDifferentAddresses(t *testing.T) {
	_, err := parse(t, `name: x
nodes: [{role: web, ports: ["127.0.0.2:8080:80", "127.0.0.3:8080:80"]}]
`)
	require.NoError(t, err)
}

// A flood of errors is cut at MaxErrors, and long values are cut short.
func TestErrorsAreCapped(t *testing.T) {
	var b strings.Builder
	b.WriteString("name: " + strings.Repeat("n", 100000) + "\nnodes: [{role: web}]\n")
	for i := 0; i < 5000; i++ {
		b.WriteString("k" + strings.Repeat("x", 200) + strconv.Itoa(i) + ": 1\n")
	}
	_, err := parse(t, b.String())
	require.Error(t, err)
	msg := err.Error()
	assert.LessOrEqual(t, strings.Count(msg, "\n"), MaxErrors+1)
	assert.Contains(t, msg, "more errors")
	assert.Less(t, len(msg), 40000)
}

// A lab file that is a FIFO or a device is refused at once, never read.
func TestLoadRefusesSpecialFiles(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "lab.yaml")
	require.NoError(t, syscall.Mkfifo(fifo, 0o644))
	for _, p := range []string{fifo, "/dev/zero", t.TempDir()} {
		_, err := Load(p)
		require.Error(t, err, p)
		assert.True(t, IsTopologyError(err))
		assert.Contains(t, err.Error(), "regular file", p)
	}
	big := filepath.Join(t.TempDir(), "lab.yaml")
	require.NoError(t, os.WriteFile(big, make([]byte, MaxFileSize+1), 0o644))
	_, err := Load(big)
	assert.ErrorContains(t, err, "larger than the 4 MiB")
}

// Bytes YAML reports without a line get one.
func TestBadBytesHaveLines(t *testing.T) {
	for src, want := range map[string]string{
		"name: x\nnodes: [{role: w\xffb}]\n": "lab.yaml:2: byte 0xff is not UTF-8 text",
		"name: x\n\nnodes: [{role: \x00}]\n": "lab.yaml:3: a NUL byte",
		"name: x\x07\nnodes: []\n":           "lab.yaml:1: control character 0x07",
	} {
		_, err := parse(t, src)
		require.Error(t, err)
		assert.Contains(t, err.Error(), want)
	}
}

// A step may not name a host file outside the lab folder, by a link either,
// nor anything in the state folder; host_paths in the user's config allows a
// folder.
func TestSourcesStayInTheLabFolder(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("x"), 0o600))
	require.NoError(t, os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "link.sh")))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, ".lab", "ssh"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".lab", "ssh", "id_ed25519"), []byte("key"), 0o600))
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644))

	src := "name: x\nnodes: [{role: web, provision: [{shell: link.sh}, {file: {src: .lab/ssh/id_ed25519, dst: /k}}, {file: {src: fifo, dst: /f}}]}]\n"
	_, err := ParseWith([]byte(src), "lab.yaml", dir, Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `provision[0].shell: "link.sh" resolves to `+filepath.Join(outside, "secret"))
	assert.Contains(t, err.Error(), `provision[1].file.src: ".lab/ssh/id_ed25519" is in the lab's state folder`)
	assert.Contains(t, err.Error(), `provision[2].file.src: "fifo" is not a regular file (a FIFO)`)

	// The user's own config may allow a host folder.
	_, err = ParseWith([]byte("name: x\nnodes: [{role: web, provision: [{shell: link.sh}]}]\n"), "lab.yaml", dir, Options{HostPaths: []string{outside}})
	require.NoError(t, err)

	// A folder with the state folder inside is fine: .lab is never copied.
	_, err = ParseWith([]byte("name: x\nnodes: [{role: web, provision: [{file: {src: ., dst: /srv}}]}]\n"), "lab.yaml", filepath.Join(dir, ".lab", ".."), Options{})
	require.Error(t, err, "the fifo in the folder is refused")
	assert.Contains(t, err.Error(), "fifo is a FIFO, not a regular file")
}

// A firewall names roles, nodes, networks and host, with ports and ranges;
// an empty one accepts nothing, a missing one everything.
func TestFirewallParses(t *testing.T) {
	top, err := parse(t, `name: x
networks: [{name: lan}, {name: dev}]
nodes:
  - {role: nginx, count: 2}
  - role: pg
    firewall:
      - allow: {from: [nginx, pg1, dev], tcp: [5432, "8000-8010"]}
      - allow: {from: [host], udp: [53], icmp: true}
  - {role: closed, firewall: []}
`)
	require.NoError(t, err)
	pg := top.RoleByName("pg")
	require.True(t, pg.HasFirewall())
	assert.Equal(t, []PortRange{{5432, 5432}, {8000, 8010}}, pg.Firewall[0].Allow.TCP)
	assert.Equal(t, "8000-8010", pg.Firewall[0].Allow.TCP[1].String())
	assert.True(t, pg.Firewall[1].Allow.ICMP)
	assert.True(t, top.RoleByName("closed").HasFirewall())
	assert.False(t, top.RoleByName("nginx").HasFirewall())
}
