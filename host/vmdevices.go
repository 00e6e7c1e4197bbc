package host

import (
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"slices"
)

// vmDevices gives the user what its VM nodes need (libvirt's
// qemu:///session runs QEMU as the user):
//
//   - /dev/net/tun open to everyone, mode 0666, as Debian's udev rule
//     makes it (on a machine where no udev ran it is root's only). Opening
//     it grants nothing by itself: without CAP_NET_ADMIN a process can
//     attach only to a tap device it owns, which the network helper makes
//     on the user's lab bridges.
//   - membership of group kvm where /dev/kvm exists, as Debian's qemu
//     documents for users who run VMs; without it the user's VMs run on
//     TCG, slowly.
func (u *User) vmDevices(out io.Writer) error {
	tun := filepath.Join(u.Root, "/dev/net/tun")
	if fi, err := os.Stat(tun); err == nil && fi.Mode().Perm()&0o006 != 0o006 {
		if err := os.Chmod(tun, 0o666); err != nil {
			return fmt.Errorf("VM nodes: %w", err)
		}
		fmt.Fprintf(out, "VM nodes: %s mode 0666, as Debian's udev rule sets it (no udev ran on this machine)\n", tun)
	}
	if _, err := os.Stat(filepath.Join(u.Root, "/dev/kvm")); err != nil {
		return nil
	}
	g, err := user.LookupGroup("kvm")
	if err != nil || slices.Contains(u.Groups, g.Gid) {
		return nil
	}
	if err := run("usermod", "-a", "-G", "kvm", u.Name); err != nil {
		return err
	}
	u.Groups = append(u.Groups, g.Gid)
	fmt.Fprintf(out, "VM nodes: added %s to group kvm, for KVM (lab host setup --remove leaves it)\n", u.Name)
	return nil
}
