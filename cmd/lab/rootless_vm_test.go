package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/labctl/lab/host"
	"github.com/labctl/lab/labtest"
	"github.com/labctl/lab/network"
	"github.com/labctl/lab/providers"
)

const rootlessVMLab = `name: %s
networks: [{name: lan, subnet: 10.97.58.0/24}]
defaults: {accel: tcg}   # nested KVM does not run guests on CI machines
nodes:
  - role: ct
    provision: [{shell: both.sh}]
  - role: vm
    provider: libvirt
    memory: 768M
    provision: [{shell: both.sh}]
`

// The same user brings up a lab with a VM node: its own libvirtd
// (qemu:///session) runs QEMU as the user, from a disk made of the user's
// image in its namespace, on a tap device of the user's that the helper
// put on the lab's bridge; the VM and a container reach each other by
// name, and destroy leaves no domain, disk or tap.
func vmLabAsUser(t *testing.T, usr *labtest.User) {
	requireLibvirt(t)
	u, err := host.LookupUser(usr.Name)
	require.NoError(t, err)
	name := fmt.Sprintf("uv%d", os.Getpid()%10000)
	dir := filepath.Join(usr.Home, "vmlab")
	both := "#!/bin/sh\nset -e\necho \"$LAB_NODE sees vm at $LAB_ROLE_VM_IPS; uid $(id -u)\" > /root/hello\n"
	usr.Write(dir, map[string]string{
		"lab.yaml": fmt.Sprintf(rootlessVMLab, name),
		"both.sh":  both,
	})
	run := func(args ...string) (string, int) { return usr.Lab(dir, args...) }
	t.Cleanup(usr.StopSessionDaemons) // after destroy: the user's cgroups are free again
	t.Cleanup(func() {
		if out, code := run("destroy"); code != 0 {
			t.Errorf("destroy: %s", out)
		}
	})
	// Root builds the lab's images (its cache is shared with the lab
	// group); the user unpacks them instead of bootstrapping its own.
	labtest.New(t, name+"r", map[string]string{"lab.yaml": fmt.Sprintf(rootlessVMLab, name+"r"), "both.sh": both}).MustRun("image", "build")

	out, code := run("up")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "unpacked from root's shared cache /var/cache/lab", "the user's images are root's")
	assert.NotContains(t, out, "building with", "no bootstrap of its own")

	for _, n := range []string{"ct1", "vm1"} {
		o, c := run("exec", n, "--", "cat", "/root/hello")
		require.Equal(t, 0, c, o)
		assert.Equal(t, n+" sees vm at 10.97.58.31; uid 0\n", o)
	}
	o, _ := run("exec", "vm1", "--", "cat", "/sys/class/dmi/id/sys_vendor")
	assert.Equal(t, "QEMU\n", o, "a VM, not a container")
	o, c := run("exec", "vm1", "--", "ping", "-c", "1", "-W", "5", "ct1."+name+".lab")
	assert.Equal(t, 0, c, o)
	o, c = run("exec", "ct1", "--", "ping", "-c", "1", "-W", "5", "vm1")
	assert.Equal(t, 0, c, o)

	// QEMU is the user's, its port a tap of the user's on the lab's bridge.
	ps, err := exec.Command("ps", "-C", "qemu-system-x86_64", "-o", "uid=,args=").Output()
	require.NoError(t, err)
	qemuUID := ""
	for _, l := range strings.Split(string(ps), "\n") {
		if strings.Contains(l, "guest="+name+"_vm1,") {
			qemuUID = strings.Fields(l)[0]
		}
	}
	assert.Equal(t, strconv.Itoa(u.UID), qemuUID, "QEMU of the user's VM runs as the user")
	port := providers.PortName(name, "vm1", 0)
	owner, isTap := network.TapOwner(port)
	require.True(t, isTap, "%s is a tap device", port)
	assert.Equal(t, u.UID, owner)
	master, _ := os.Readlink(filepath.Join("/sys/class/net", port, "master"))
	assert.Equal(t, "lab-"+name+"-0", filepath.Base(master))
	assert.FileExists(t, filepath.Join(usr.Home, ".config", "libvirt", "qemu", name+"_vm1.xml"), "the definition is the session's")

	out, code = run("destroy")
	require.Equal(t, 0, code, out)
	assert.NoFileExists(t, filepath.Join("/sys/class/net", port))
	assert.NoFileExists(t, filepath.Join(usr.Home, ".config", "libvirt", "qemu", name+"_vm1.xml"))
	disks, _ := filepath.Glob(filepath.Join(usr.Home, ".local", "share", "lab", "libvirt", name+"_*"))
	assert.Empty(t, disks)
	labtest.AssertNoLeaks(t, name, dir)
}
