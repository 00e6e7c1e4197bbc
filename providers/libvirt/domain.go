package libvirt

import (
	"crypto/sha256"
	"fmt"
	"strings"

	"github.com/labctl/lab/providers"
)

// DomainXML renders the domain of a node.
func (p *Provider) DomainXML(n providers.Node, base *vmBase, accel string) string {
	disk, console := p.paths(n)
	typ := "qemu"
	if accel == "kvm" {
		typ = "kvm"
	}
	cpus := n.CPUs
	if cpus < 1 {
		cpus = 1
	}
	mem := n.Memory >> 20
	if mem < 256 {
		mem = 256
	}
	// Root's QEMU runs as root (lab's images are root's files); a
	// session's runs as its user, and can be no one else.
	seclabel := "  <seclabel type='static' model='dac' relabel='no'><label>+0:+0</label></seclabel>\n"
	if p.session != nil {
		seclabel = ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<domain type='%s'>
  <name>%s</name>
  <uuid>%s</uuid>
  <description>%s</description>
  <memory unit='MiB'>%d</memory>
  <vcpu>%d</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>%s</kernel>
    <initrd>%s</initrd>
    <cmdline>root=/dev/vda rw console=ttyS0 net.ifnames=0 systemd.show_status=0</cmdline>
  </os>
  <features><acpi/><apic/></features>
`, typ, n.ID, uuid(n.Lab, n.Name), xmlText(description(n)), mem, cpus, base.Kernel, base.Initrd)
	if accel == "kvm" {
		b.WriteString("  <cpu mode='host-passthrough'/>\n")
	} else {
		// TCG: emulate the newest CPU qemu can (qemu64 boots far slower).
		b.WriteString("  <cpu mode='maximum'/>\n")
	}
	fmt.Fprintf(&b, `  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
%s  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='unsafe' discard='unmap'/>
      <source file='%s'/>
      <target dev='vda' bus='virtio'/>
    </disk>
`, seclabel, disk)
	for i, ifc := range n.Interfaces {
		port := providers.PortName(n.Lab, n.Name, i)
		if p.session != nil { // the helper's tap device on the bridge, which QEMU opens
			fmt.Fprintf(&b, `    <interface type='ethernet'>
      <mac address='%s'/>
      <target dev='%s' managed='no'/>
      <model type='virtio'/>
    </interface>
`, mac(n.Lab, n.Name, i), port)
			continue
		}
		fmt.Fprintf(&b, `    <interface type='bridge'>
      <mac address='%s'/>
      <source bridge='%s'/>
      <target dev='%s'/>
      <model type='virtio'/>
    </interface>
`, mac(n.Lab, n.Name, i), ifc.Bridge, port)
	}
	fmt.Fprintf(&b, `    <serial type='file'>
      <source path='%s' append='off'/>
      <target port='0'/>
    </serial>
    <serial type='pty'><target port='1'/></serial>
    <console type='pty'><target type='serial' port='1'/></console>
    <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
    <memballoon model='none'/>
  </devices>
</domain>
`, console)
	return b.String()
}

// uuid is a stable UUID for a node's domain, so that defining it again
// updates it instead of clashing with itself.
func uuid(lab, node string) string {
	h := sha256.Sum256([]byte("lab-domain/" + lab + "/" + node))
	h[6] = h[6]&0x0f | 0x40 // version 4 layout
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// mac is a stable MAC address in QEMU's range for a node's interface.
func mac(lab, node string, i int) string {
	h := fnv32(fmt.Sprintf("%s/%s/%d", lab, node, i))
	return fmt.Sprintf("52:54:00:%02x:%02x:%02x", byte(h>>16), byte(h>>8), byte(h))
}

func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}
