package topology

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/labctl/lab/labtest"
)

func parse(t *testing.T, src string) (*Topology, error) {
	t.Helper()
	dir, err := filepath.Abs("testdata")
	require.NoError(t, err)
	return ParseWith([]byte(src), "lab.yaml", dir, Options{Providers: []string{"libvirt", "lxc"}})
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
	for _, c := range labtest.BadCases(t) {
		t.Run(c.Name, func(t *testing.T) {
			_, err := parse(t, c.Src)
			require.Error(t, err)
			assert.True(t, IsTopologyError(err))
			assert.Contains(t, err.Error(), c.Want)
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
