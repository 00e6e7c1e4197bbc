package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/labctl/lab/labtest"
)

// requireLibvirt fails a test of VM nodes where libvirt or QEMU is missing.
func requireLibvirt(t *testing.T) {
	for _, bin := range []string{"libvirtd", "qemu-system-x86_64", "qemu-img", "virsh"} {
		_, err := exec.LookPath(bin)
		require.NoError(t, err, "make setup installs libvirt and qemu")
	}
}

// One lab, one container and one VM: both provisioned by the same script,
// they resolve and reach each other by name, exec works on the VM, and
// destroy leaves no domain, disk or bridge.
func TestIntegrationLibvirtMixedLab(t *testing.T) {
	labtest.Integration(t)
	requireLibvirt(t)
	l := labtest.New(t, "it-mix", map[string]string{
		"lab.yaml": `
name: it-mix
networks: [{name: lan, subnet: 10.97.13.0/24}]
defaults: {accel: tcg}   # nested KVM does not run guests on CI machines
nodes:
  - role: ct
    provision: [{shell: both.sh}]
  - role: vm
    provider: libvirt
    cpus: 2
    memory: 768M
    provision: [{shell: both.sh}]
    health: [{command: "systemctl is-active qemu-guest-agent"}]
`,
		"both.sh": `#!/bin/sh
set -e
echo "$LAB_NODE ($LAB_ROLE) sees ct at $LAB_ROLE_CT_IPS and vm at $LAB_ROLE_VM_IPS" > /root/hello
cat /root/hello
`,
	})
	_, stderr, code := l.Run("up")
	require.Equal(t, 0, code, stderr)
	st := l.Status()
	assert.Equal(t, "running", st["vm1"].State)
	assert.Equal(t, "running", st["ct1"].State)
	assert.Equal(t, "done", st["vm1"].Provisioned)
	labtest.RequireRouteVia(t, "10.97.13.31", "lab-it-mix-0")

	for _, n := range []string{"ct1", "vm1"} {
		o, c := l.Exec(n, "cat", "/root/hello")
		require.Equal(t, 0, c)
		assert.Equal(t, n+" ("+strings.TrimRight(n, "1")+") sees ct at 10.97.13.11 and vm at 10.97.13.31\n", o)
	}
	// The VM is a VM: its own kernel, not the host's.
	o, _ := l.Exec("vm1", "sh", "-c", "cat /sys/class/dmi/id/sys_vendor; hostname")
	assert.Equal(t, "QEMU\nvm1\n", o)
	// Names and reachability both ways, through the lab's DNS.
	o, c := l.Exec("vm1", "ping", "-c", "1", "-W", "5", "ct1.it-mix.lab")
	assert.Equal(t, 0, c, o)
	o, c = l.Exec("ct1", "ping", "-c", "1", "-W", "5", "vm1")
	assert.Equal(t, 0, c, o)
	// And over IPv6: the VM has its address on the dual-stack network.
	require.Len(t, st["vm1"].Addresses6, 1)
	o, c = l.Exec("ct1", "ping", "-6", "-c", "1", "-W", "5", st["vm1"].Addresses6[0])
	assert.Equal(t, 0, c, o)
	// exec: output, exit code, stdin, on the VM.
	o, c = l.Exec("vm1", "sh", "-c", "echo out; echo err >&2; exit 3")
	assert.Equal(t, 3, c)
	assert.Equal(t, "out\n", o)
	cmd := exec.Command(l.Bin, "exec", "vm1", "--", "tr", "a-z", "A-Z")
	cmd.Dir = l.Dir
	cmd.Stdin = strings.NewReader("shout\n")
	b, err := cmd.Output()
	require.NoError(t, err)
	assert.Equal(t, "SHOUT\n", string(b))
	// Its journal, and a follow that sees a new line (polled by cursor:
	// the guest agent gives output only when a command ends).
	// (Stamped localhost or vm1: lab names the VM through its agent, which
	// may start after systemd has finished booting.)
	assert.Regexp(t, `(localhost|vm1) systemd\[1\]: Startup finished`, l.MustRun("logs", "vm1", "-n", "0"))
	followShows(t, l, "vm1")
	// No default route in the VM either.
	o, _ = l.Exec("vm1", "ip", "-4", "route")
	assert.NotContains(t, o, "default")

	// halt shuts the VM down; up boots it again with its addresses.
	l.MustRun("halt")
	assert.Equal(t, "stopped", l.Status()["vm1"].State)
	l.MustRun("up")
	o, c = l.Exec("ct1", "ping", "-c", "1", "-W", "5", "vm1")
	assert.Equal(t, 0, c, o)

	// Faults on a VM: a delay on its tap, a partition, a pause.
	id := faultID(t, l, "delay", "vm1", "200ms")
	for _, ms := range rtts(t, l, "ct1", "vm1") {
		assert.GreaterOrEqual(t, ms, 200.0)
	}
	l.MustRun("fault", "heal", id)
	id = faultID(t, l, "partition", "ct1", "vm1")
	_, c = l.Exec("ct1", "ping", "-c", "1", "-W", "2", "vm1")
	assert.NotEqual(t, 0, c, "the partition holds for a VM")
	l.MustRun("fault", "heal", id)
	id = faultID(t, l, "pause", "vm1")
	assert.Equal(t, "paused", l.Status()["vm1"].State)
	l.MustRun("fault", "heal", id)
	o, c = l.Exec("ct1", "ping", "-c", "1", "-W", "5", "vm1")
	assert.Equal(t, 0, c, o)

	// A VM's snapshot: a file is back as saved after a restore, and the
	// whole lab (container and VM, frozen together) too.
	_, c = l.Exec("vm1", "sh", "-c", "echo one > /root/x && sync")
	require.Equal(t, 0, c)
	l.MustRun("snapshot", "save", "vm", "vm1")
	_, c = l.Exec("vm1", "sh", "-c", "echo two > /root/x && sync")
	require.Equal(t, 0, c)
	l.MustRun("snapshot", "restore", "vm")
	o, _ = l.Exec("vm1", "cat", "/root/x")
	assert.Equal(t, "one\n", o)
	l.MustRun("snapshot", "save", "all")
	_, c = l.Exec("ct1", "sh", "-c", "echo two > /root/x && sync")
	require.Equal(t, 0, c)
	l.MustRun("snapshot", "restore", "all")
	o, _ = l.Exec("ct1", "cat", "/root/x")
	assert.Equal(t, "", strings.TrimSpace(o), "ct1 had no /root/x when saved")
	o, c = l.Exec("ct1", "ping", "-c", "1", "-W", "5", "vm1")
	assert.Equal(t, 0, c, o)

	l.MustRun("destroy", "--snapshots")
	labtest.AssertNoLeaks(t, "it-mix", l.Dir)
	_, err = os.Stat("/var/lib/lab/libvirt/it-mix_vm1.qcow2")
	assert.True(t, os.IsNotExist(err))
}
