package libvirt

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/labctl/lab/providers"
)

func TestDomainXML(t *testing.T) {
	p := &Provider{}
	n := providers.Node{Lab: "mix", Name: "vm1", ID: "mix-vm1", CPUs: 2, Memory: 1 << 30,
		Interfaces: []providers.Interface{{Bridge: "lab-mix-0", Addr: netip.MustParsePrefix("10.97.13.31/24")}}}
	base := &vmBase{Disk: "/c/base.qcow2", Kernel: "/c/vmlinuz", Initrd: "/c/initrd.img"}
	tcg := p.DomainXML(n, base, "tcg")
	for _, want := range []string{
		"<domain type='qemu'>", "<name>mix-vm1</name>", "<memory unit='MiB'>1024</memory>", "<vcpu>2</vcpu>",
		"<kernel>/c/vmlinuz</kernel>", "net.ifnames=0", "<cpu mode='maximum'/>",
		"<source bridge='lab-mix-0'/>", "org.qemu.guest_agent.0", "/var/lib/lab/libvirt/mix-vm1.qcow2",
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

func TestAccelChoice(t *testing.T) {
	old := kvmVerdict
	kvmVerdict = t.TempDir() + "/kvm-hangs"
	defer func() { kvmVerdict = old }()
	assert.Equal(t, "tcg", (&Provider{}).Accel(providers.Node{Accel: "tcg"}))
	assert.Equal(t, "kvm", (&Provider{accel: "tcg"}).Accel(providers.Node{Accel: "kvm"}), "the topology wins over the environment")
	assert.Equal(t, "tcg", (&Provider{accel: "tcg"}).Accel(providers.Node{}))
	if fileExists("/dev/kvm") {
		assert.Equal(t, "kvm", (&Provider{}).Accel(providers.Node{}))
		assert.NoError(t, writeVerdict())
		assert.Equal(t, "tcg", (&Provider{}).Accel(providers.Node{}), "a KVM seen to hang is not tried again")
	}
}

func TestStableUUID(t *testing.T) {
	assert.Equal(t, uuid("lab", "vm1"), uuid("lab", "vm1"))
	assert.NotEqual(t, uuid("lab", "vm1"), uuid("lab", "vm2"))
	assert.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, uuid("lab", "vm1"))
}
