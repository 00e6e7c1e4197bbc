package topology

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func parse(t *testing.T, src string) (*Topology, error) {
	t.Helper()
	dir, err := filepath.Abs("testdata")
	require.NoError(t, err)
	return Parse([]byte(src), "lab.yaml", dir)
}

func TestLoadExample(t *testing.T) {
	top, err := Load("testdata/example.yaml")
	require.NoError(t, err)
	assert.Equal(t, "todomvc", top.Name)
	require.Len(t, top.Nodes, 3)
	assert.Equal(t, []string{"pg", "adm"}, top.Nodes[2].After)
	assert.Equal(t, 11, top.Line("nodes[1].count"))
	assert.Equal(t, 2, top.Nodes[1].CountOf())

	lab, err := Expand(top, nil)
	require.NoError(t, err)
	var names, ips []string
	for _, n := range lab.Nodes {
		names = append(names, n.Name)
		ips = append(ips, n.IP().String())
	}
	assert.Equal(t, []string{"adm1", "pg1", "pg2", "nginx1", "nginx2"}, names)
	assert.Equal(t, []string{"10.80.0.11", "10.80.0.31", "10.80.0.32", "10.80.0.51", "10.80.0.52"}, ips)
	assert.Equal(t, "lab-todomvc-0", lab.Networks[0].Bridge)
	assert.Equal(t, "10.80.0.1", lab.Networks[0].Gateway.String())
	assert.Equal(t, "pg1.todomvc.lab", lab.FQDN(lab.Nodes[1]))
	assert.Equal(t, []string{"postgresql"}, lab.Nodes[1].Packages)
	assert.Equal(t, int64(512<<20), lab.Nodes[1].Memory)
	assert.Contains(t, lab.Hosts(), "10.80.0.52\tnginx2.todomvc.lab nginx2\n")
}

func TestDefaults(t *testing.T) {
	top, err := parse(t, "name: mini\nnodes:\n  - role: web\n    health: [{http: 'http://localhost/'}]\n    provision: [{inline: 'true'}]\n")
	require.NoError(t, err)
	r := top.Nodes[0]
	assert.Equal(t, 1, r.CountOf())
	assert.Equal(t, "lxc", r.Provider)
	assert.Equal(t, "debian/bookworm", r.Image)
	assert.Equal(t, 1, r.CPUs)
	assert.Equal(t, "512M", r.Memory)
	assert.Equal(t, []string{"lan"}, r.Networks)
	assert.Equal(t, 200, r.Health[0].Status)
	assert.Equal(t, RunChanged, r.Provision[0].Run)
	require.Len(t, top.Networks, 1)
	assert.Equal(t, "mini.lab", top.Networks[0].Domain)

	lab, err := Expand(top, nil)
	require.NoError(t, err)
	sub := lab.Networks[0].Subnet
	assert.True(t, lab.Networks[0].Auto)
	assert.Equal(t, AutoSubnet("mini", "lan", 0), sub)
	assert.True(t, netip.MustParsePrefix("10.200.0.0/13").Overlaps(sub) || netip.MustParsePrefix("10.208.0.0/12").Overlaps(sub) || netip.MustParsePrefix("10.224.0.0/11").Overlaps(sub))

	// A subnet kept in state wins over the first candidate.
	kept := netip.MustParsePrefix("10.201.7.0/24")
	lab, err = Expand(top, map[string]netip.Prefix{"lan": kept})
	require.NoError(t, err)
	assert.Equal(t, "10.201.7.11", lab.Nodes[0].IP().String())
}

func TestExpansionStableAcrossCounts(t *testing.T) {
	base := "name: s\nnetworks: [{name: lan, subnet: 10.81.0.0/24}]\nnodes:\n  - {role: a, count: %A}\n  - {role: b, count: 2}\n  - {role: c, count: %C}\n"
	addrs := func(a, c string) map[string]string {
		src := strings.NewReplacer("%A", a, "%C", c).Replace(base)
		top, err := parse(t, src)
		require.NoError(t, err)
		lab, err := Expand(top, nil)
		require.NoError(t, err)
		m := map[string]string{}
		for _, n := range lab.Nodes {
			m[n.Name] = n.IP().String()
		}
		return m
	}
	small := addrs("1", "1")
	big := addrs("5", "3")
	for name, ip := range small {
		assert.Equal(t, ip, big[name], "node %s moved when other roles scaled", name)
	}
	assert.Len(t, big, 10)
	// Same file, same result.
	assert.Equal(t, addrs("5", "3"), big)
	// Every address is unique.
	seen := map[string]string{}
	for n, ip := range addrs("20", "20") {
		assert.NotContains(t, seen, ip, "%s and %s share %s", n, seen[ip], ip)
		seen[ip] = n
	}
}

func TestBlockSize(t *testing.T) {
	for pfx, want := range map[string]int{"10.0.0.0/24": 20, "10.0.0.0/23": 40, "10.0.0.0/16": 5460, "10.0.0.0/26": 4, "10.0.0.0/27": 1} {
		assert.Equal(t, want, BlockSize(netip.MustParsePrefix(pfx)), pfx)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"512M": 512 << 20, "1G": 1 << 30, "1.5G": 3 << 29, "256MiB": 256 << 20, "2048k": 2 << 20, "1073741824": 1 << 30} {
		got, err := ParseSize(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "M", "-1G", "lots", "1X"} {
		_, err := ParseSize(bad)
		assert.Error(t, err, bad)
	}
}

// Each bad file must fail with the field path and, where it can be known, the
// line.
func TestValidationErrors(t *testing.T) {
	const ok = "nodes: [{role: web}]\n"
	cases := []struct {
		name, src, want string
	}{
		{"syntax", "name: x\nnodes: [\n", "lab.yaml: YAML syntax: line 2"},
		{"tabs", "name: x\n\tnodes: []\n", "YAML syntax"},
		{"not a mapping", "- a\n- b\n", "lab.yaml:1: the file must be a mapping"},
		{"empty file", "", "the file must be a mapping"},
		{"two documents", "name: x\n" + ok + "---\nname: y\n", "more than one YAML document"},
		{"unknown top key", "name: x\nnode: []\n" + ok, `lab.yaml:2: node: unknown field "node" (did you mean "nodes"?)`},
		{"unknown role key", "name: x\nnodes:\n  - role: web\n    cont: 2\n", `lab.yaml:4: nodes[0].cont: unknown field "cont" (did you mean "count"?)`},
		{"unknown far key", "name: x\nnodes:\n  - role: web\n    flavour: big\n", `nodes[0].flavour: unknown field "flavour" (known:`},
		{"duplicate key", "name: x\nname: y\n" + ok, `lab.yaml:2: name: duplicate key "name"`},
		{"missing name", ok, "name: required"},
		{"bad name", "name: My_Lab\n" + ok, `name: "My_Lab": use lowercase`},
		{"name too long", "name: averylongname\n" + ok, "at most 9 fit a Linux bridge name"},
		{"no nodes", "name: x\n", "nodes: required"},
		{"count wrong type", "name: x\nnodes: [{role: web, count: two}]\n", `lab.yaml:2: nodes[0].count: want a whole number, got "two"`},
		{"count negative", "name: x\nnodes: [{role: web, count: -1}]\n", "nodes[0].count: -1: a count cannot be below 0"},
		{"count too big", "name: x\nnodes: [{role: web, count: 21}]\n", "nodes[0].count: 21 nodes do not fit"},
		{"count float", "name: x\nnodes: [{role: web, count: 1.5}]\n", "nodes[0].count: want a whole number"},
		{"nodes not a list", "name: x\nnodes: {role: web}\n", "nodes: want a list, got a mapping"},
		{"role missing", "name: x\nnodes: [{count: 1}]\n", "nodes[0].role: required"},
		{"role ends in digit", "name: x\nnodes: [{role: web1}]\n", `nodes[0].role: "web1": use lowercase`},
		{"duplicate role", "name: x\nnodes: [{role: web}, {role: web}]\n", `nodes[1].role: role "web" is already defined at nodes[0]`},
		{"after unknown", "name: x\nnodes:\n  - role: pg\n  - role: nginx\n    after: [pgg]\n", `lab.yaml:5: nodes[1].after[0]: unknown role "pgg" (did you mean "pg"?)`},
		{"after self", "name: x\nnodes: [{role: web, after: [web]}]\n", "nodes[0].after[0]: a role cannot come after itself"},
		{"after cycle", "name: x\nnodes:\n  - {role: a, after: [c]}\n  - {role: b, after: [a]}\n  - {role: c, after: [b]}\n", "cycle: a → c → b → a"},
		{"bad provider", "name: x\nnodes: [{role: web, provider: docker}]\n", `nodes[0].provider: unknown provider "docker"`},
		{"bad default provider", "name: x\ndefaults: {provider: vbox}\n" + ok, `defaults.provider: unknown provider "vbox"`},
		{"bad image", "name: x\nnodes: [{role: web, image: ubuntu:22.04}]\n", "nodes[0].image: \"ubuntu:22.04\": want debian/SUITE"},
		{"bad memory", "name: x\nnodes: [{role: web, memory: lots}]\n", `nodes[0].memory: "lots": want a size`},
		{"tiny memory", "name: x\nnodes: [{role: web, memory: 1M}]\n", "less than 64M"},
		{"bad cpus", "name: x\nnodes: [{role: web, cpus: 0}]\ndefaults: {cpus: -2}\n", "defaults.cpus: -2: want 1 to 256"},
		{"bad package", "name: x\nnodes: [{role: web, packages: [Nginx]}]\n", `nodes[0].packages[0]: "Nginx" is not a Debian package name`},
		{"bad subnet", "name: x\nnetworks: [{name: lan, subnet: 10.80.0.0/33}]\n" + ok, "networks[0].subnet: \"10.80.0.0/33\": want an IPv4 subnet"},
		{"public subnet", "name: x\nnetworks: [{name: lan, subnet: 8.8.8.0/24}]\n" + ok, "is not a private range"},
		{"host bits", "name: x\nnetworks: [{name: lan, subnet: 10.80.0.5/24}]\n" + ok, "has host bits set; did you mean 10.80.0.0/24?"},
		{"subnet too small", "name: x\nnetworks: [{name: lan, subnet: 10.80.0.0/30}]\n" + ok, "want a prefix length from /16 to /27"},
		{"overlapping subnets", "name: x\nnetworks: [{name: a, subnet: 10.80.0.0/16}, {name: b, subnet: 10.80.1.0/24}]\n" + ok, "networks[1].subnet: 10.80.1.0/24 overlaps 10.80.0.0/16"},
		{"duplicate network", "name: x\nnetworks: [{name: a}, {name: a}]\n" + ok, `networks[1].name: network "a" is defined twice`},
		{"unknown network", "name: x\nnodes: [{role: web, networks: [wan]}]\n", `nodes[0].networks[0]: unknown network "wan"`},
		{"bad domain", "name: x\nnetworks: [{name: a, domain: 'bad domain'}]\n" + ok, `networks[0].domain: "bad domain" is not a DNS domain`},
		{"missing script", "name: x\nnodes: [{role: web, provision: [{shell: scripts/nope.sh}]}]\n", `nodes[0].provision[0].shell: "scripts/nope.sh": no such file`},
		{"script is a folder", "name: x\nnodes: [{role: web, provision: [{shell: scripts}]}]\n", "is not a regular file"},
		{"two step kinds", "name: x\nnodes: [{role: web, provision: [{shell: scripts/pg.sh, inline: 'true'}]}]\n", "nodes[0].provision[0]: want exactly one of shell, inline or file"},
		{"empty step", "name: x\nnodes: [{role: web, provision: [{}]}]\n", "want exactly one of shell, inline or file"},
		{"bad run", "name: x\nnodes: [{role: web, provision: [{inline: 'true', run: sometimes}]}]\n", `provision[0].run: "sometimes"`},
		{"bad env", "name: x\nnodes: [{role: web, provision: [{inline: 'true', env: {'A-B': 1}}]}]\n", `provision[0].env.A-B: "A-B" is not an environment variable name`},
		{"file src missing", "name: x\nnodes: [{role: web, provision: [{file: {src: nope.conf, dst: /etc/x}}]}]\n", `provision[0].file.src: "nope.conf": no such file`},
		{"file dst relative", "name: x\nnodes: [{role: web, provision: [{file: {src: files/pg.conf, dst: etc/x}}]}]\n", "provision[0].file.dst: \"etc/x\": want an absolute path"},
		{"file bad mode", "name: x\nnodes: [{role: web, provision: [{file: {src: files/pg.conf, dst: /x, mode: rw}}]}]\n", "file.mode"},
		{"file unknown key", "name: x\nnodes: [{role: web, provision: [{file: {source: files/pg.conf, dst: /x}}]}]\n", `provision[0].file.source: unknown field "source"`},
		{"health two kinds", "name: x\nnodes: [{role: web, health: [{tcp: 80, command: 'true'}]}]\n", "health[0]: want exactly one of command, tcp or http"},
		{"health bad port", "name: x\nnodes: [{role: web, health: [{tcp: 70000}]}]\n", "health[0].tcp: 70000"},
		{"health bad url", "name: x\nnodes: [{role: web, health: [{http: 'localhost'}]}]\n", `health[0].http: "localhost": want a URL`},
		{"health status without http", "name: x\nnodes: [{role: web, health: [{tcp: 80, status: 200}]}]\n", "status goes with http"},
		{"bad port", "name: x\nnodes: [{role: web, ports: ['80']}]\n", `ports[0]: "80": want HOSTPORT:NODEPORT`},
		{"port range", "name: x\nnodes: [{role: web, ports: ['0:80']}]\n", "ports from 1 to 65535"},
		{"port not loopback", "name: x\nnodes: [{role: web, ports: ['0.0.0.0:8080:80']}]\n", "must be a loopback address"},
		{"port twice", "name: x\nnodes: [{role: a, ports: ['8080:80']}, {role: b, ports: ['8080:81']}]\n", "nodes[1].ports[0]: host port 8080 is already forwarded by nodes[0].ports[0]"},
		{"bad duration", "name: x\ndefaults: {health_timeout: soon}\n" + ok, `defaults.health_timeout: "soon"`},
		{"bad accel", "name: x\ndefaults: {accel: hvf}\n" + ok, `defaults.accel: "hvf": want kvm or tcg`},
		{"wrong type string for list", "name: x\nnodes: [{role: web, after: pg}]\n", `nodes[0].after: want a list, got "pg"`},
		{"mapping for string", "name: {a: b}\n" + ok, "name: want a string, got a mapping"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parse(t, c.src)
			require.Error(t, err)
			assert.True(t, IsTopologyError(err))
			assert.Contains(t, err.Error(), c.want)
			assert.True(t, strings.HasPrefix(err.Error(), "lab.yaml"), err.Error())
		})
	}
}

func TestAllErrorsReportedAtOnce(t *testing.T) {
	_, err := parse(t, "name: x\nnodes:\n  - {role: a, count: -1}\n  - {role: b, after: [z]}\n")
	require.Error(t, err)
	lines := strings.Split(err.Error(), "\n")
	require.Len(t, lines, 2)
	assert.Contains(t, lines[0], "lab.yaml:3: nodes[0].count")
	assert.Contains(t, lines[1], "lab.yaml:4: nodes[1].after[0]")
}

func TestMissingFile(t *testing.T) {
	_, err := Load("testdata/nope.yaml")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "testdata/nope.yaml: no such file")
}

func TestAutoSubnetCandidatesDiffer(t *testing.T) {
	a := AutoSubnet("x", "lan", 0)
	b := AutoSubnet("x", "lan", 1)
	assert.NotEqual(t, a, b)
	assert.NotEqual(t, AutoSubnet("x", "lan", 0), AutoSubnet("y", "lan", 0))
	_, err := ParseSubnet(a.String())
	assert.NoError(t, err)
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("name: x\nnodes: [{role: web, count: 2, after: [db]}, {role: db}]\n"))
	f.Add([]byte("name: x\nnetworks: [{name: lan, subnet: 10.0.0.0/24}]\nnodes: [{role: a, health: [{http: 'http://x/'}]}]\n"))
	f.Add([]byte("- [\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		top, err := Parse(data, "fuzz.yaml", t.TempDir())
		if err != nil {
			assert.True(t, strings.HasPrefix(err.Error(), "fuzz.yaml"), err.Error())
			return
		}
		_, err = Expand(top, nil)
		assert.NoError(t, err)
	})
}
