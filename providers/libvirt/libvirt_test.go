package libvirt

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/labctl/lab/providers"
)

func TestDomainXML(t *testing.T) {
	p := &Provider{}
	n := providers.Node{Lab: "mix", Name: "vm1", ID: "mix_vm1", CPUs: 2, Memory: 1 << 30,
		Interfaces: []providers.Interface{{Bridge: "lab-mix-0", Addr: netip.MustParsePrefix("10.97.13.31/24")}}}
	base := &vmBase{Disk: "/c/base.qcow2", Kernel: "/c/vmlinuz", Initrd: "/c/initrd.img"}
	tcg := p.DomainXML(n, base, "tcg")
	for _, want := range []string{
		"<domain type='qemu'>", "<name>mix_vm1</name>", "<memory unit='MiB'>1024</memory>", "<vcpu>2</vcpu>",
		"<kernel>/c/vmlinuz</kernel>", "net.ifnames=0", "<cpu mode='maximum'/>",
		"<source bridge='lab-mix-0'/>", "org.qemu.guest_agent.0", "/var/lib/lab/libvirt/mix_vm1.qcow2",
		"<mac address='" + mac("mix", "vm1", 0) + "'/>",
	} {
		assert.Contains(t, tcg, want)
	}
	kvm := p.DomainXML(n, base, "kvm")
	assert.Contains(t, kvm, "<domain type='kvm'>")
	assert.Contains(t, kvm, "host-passthrough")
	assert.True(t, strings.HasPrefix(mac("a", "b", 0), "52:54:00:"))
	assert.NotEqual(t, mac("a", "b", 0), mac("a", "b", 1))
}

// A user's VM (qemu:///session): its port is the helper's tap, opened by
// name, and QEMU runs as the user (no static label of root's).
func TestDomainXMLOfASession(t *testing.T) {
	p := &Provider{session: &session{}, Paths: Paths{Disks: "/home/u/.local/share/lab/libvirt"}}
	n := providers.Node{Lab: "mix", Name: "vm1", ID: "mix_vm1",
		Interfaces: []providers.Interface{{Bridge: "lab-mix-0", Addr: netip.MustParsePrefix("10.97.13.31/24")}}}
	x := p.DomainXML(n, &vmBase{Disk: "/c/base.qcow2", Kernel: "/c/vmlinuz", Initrd: "/c/initrd.img"}, "tcg")
	assert.Contains(t, x, "<interface type='ethernet'>")
	assert.Contains(t, x, "<target dev='"+providers.PortName("mix", "vm1", 0)+"' managed='no'/>")
	assert.Contains(t, x, "/home/u/.local/share/lab/libvirt/mix_vm1.qcow2")
	assert.NotContains(t, x, "<source bridge=")
	assert.NotContains(t, x, "seclabel")
	assert.Equal(t, "qemu:///session", string(p.uri()))
	assert.Equal(t, "qemu:///system", string((&Provider{}).uri()))
}

func TestAccelChoice(t *testing.T) {
	paths := Paths{Verdict: t.TempDir() + "/kvm-hangs"}
	assert.Equal(t, "tcg", (&Provider{Paths: paths}).Accel(providers.Node{Accel: "tcg"}))
	assert.Equal(t, "kvm", (&Provider{accel: "tcg", Paths: paths}).Accel(providers.Node{Accel: "kvm"}), "the topology wins over the environment")
	assert.Equal(t, "tcg", (&Provider{accel: "tcg", Paths: paths}).Accel(providers.Node{}))
	if fileExists("/dev/kvm") {
		p := &Provider{Paths: paths}
		assert.Equal(t, "kvm", p.Accel(providers.Node{}))
		assert.NoError(t, p.writeVerdict())
		assert.Equal(t, "tcg", p.Accel(providers.Node{}), "a KVM seen to hang is not tried again")
	}
}

func TestStableUUID(t *testing.T) {
	assert.Equal(t, uuid("lab", "vm1"), uuid("lab", "vm1"))
	assert.NotEqual(t, uuid("lab", "vm1"), uuid("lab", "vm2"))
	assert.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, uuid("lab", "vm1"))
}

// A read-only provider never starts libvirtd nor touches /dev/kvm: with no
// daemon, State says so.
func TestReadOnlyStartsNothing(t *testing.T) {
	var log strings.Builder
	p := &Provider{readOnly: true, log: &log, Paths: Paths{Socket: filepath.Join(t.TempDir(), "no-libvirt-sock")}}
	st, err := p.State(context.Background(), providers.Node{Name: "vm1", ID: "mix_vm1"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "libvirtd is not running")
	assert.Equal(t, providers.Unknown, st)
	assert.Empty(t, log.String(), "nothing was started or changed")
}

// The description records the lab, node and owner; List reads them from
// libvirt's saved definitions without a daemon.
func TestOwnerInDescription(t *testing.T) {
	n := providers.Node{Lab: "mix", Name: "vm1", ID: "mix_vm1", Owner: "/home/me/lab & co/.lab"}
	f, ok := parseDescription(description(n))
	require.True(t, ok)
	assert.Equal(t, "mix", f.Lab)
	assert.Equal(t, "vm1", f.Node)
	assert.Equal(t, n.Owner, f.Owner)
	_, ok = parseDescription("some VM of someone else")
	assert.False(t, ok)

	p := &Provider{Paths: Paths{Configs: t.TempDir(), Disks: t.TempDir()}}
	xml := p.DomainXML(n, &vmBase{}, "tcg")
	require.NoError(t, os.WriteFile(filepath.Join(p.Paths.Configs, "mix_vm1.xml"), []byte(xml), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(p.Paths.Configs, "other.xml"), []byte("<domain><name>other</name><description>not ours</description></domain>"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(p.Paths.Disks, "old_vm2.qcow2"), nil, 0o600))
	found, err := p.List(context.Background())
	require.NoError(t, err)
	require.Len(t, found, 2)
	assert.Equal(t, "mix_vm1", found[0].ID)
	assert.Equal(t, n.Owner, found[0].Owner)
	assert.Equal(t, providers.Found{Provider: "libvirt", ID: "old_vm2", Lab: "old", Node: "vm2", State: providers.Absent}, found[1])
}
