package network

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Tap devices are how a user's VM nodes (libvirt's qemu:///session, lab
// without root) sit on a lab bridge: root makes a persistent tap owned by
// the user and attaches it; the user's QEMU opens it by name (libvirt's
// <interface type='ethernet'> with <target managed='no'/>), as
// qemu-bridge-helper would, but with no ACL file to keep.

// AddTap makes a persistent tap device owned by uid (multi-queue off,
// virtio-net headers on, as QEMU opens it), attaches it to bridge and
// brings it up. A tap of that name and owner already there is only
// attached again.
func AddTap(ctx context.Context, name, bridge string, uid int) error {
	if owner, ok := TapOwner(name); !ok || owner != uid {
		if LinkExists(name) {
			return fmt.Errorf("%s exists and is not a tap device of uid %d", name, uid)
		}
		if _, err := run(ctx, "ip", "tuntap", "add", "dev", name, "mode", "tap", "user", strconv.Itoa(uid), "vnet_hdr"); err != nil {
			return err
		}
	}
	if _, err := run(ctx, "ip", "link", "set", "dev", name, "master", bridge); err != nil {
		return err
	}
	_, err := run(ctx, "ip", "link", "set", "dev", name, "up")
	return err
}

// DelTap removes a tap device; one already gone is no error.
func DelTap(ctx context.Context, name string) error {
	if _, ok := TapOwner(name); !ok {
		return nil
	}
	_, err := run(ctx, "ip", "tuntap", "del", "dev", name, "mode", "tap")
	return err
}

// TapOwner is the uid that owns a tap (or tun) device: false when name is
// not one (or its owner is unset, -1: anyone's).
func TapOwner(name string) (int, bool) {
	if name == "" || strings.ContainsAny(name, "/.") {
		return 0, false
	}
	dir := filepath.Join("/sys/class/net", name)
	if _, err := os.Stat(filepath.Join(dir, "tun_flags")); err != nil {
		return 0, false
	}
	b, err := os.ReadFile(filepath.Join(dir, "owner"))
	if err != nil {
		return 0, false
	}
	uid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || uid < 0 {
		return 0, false
	}
	return uid, true
}

// TapsOn are the tap devices attached to bridge.
func TapsOn(bridge string) []string {
	ports, _ := filepath.Glob(filepath.Join("/sys/class/net", bridge, "brif", "*"))
	var taps []string
	for _, p := range ports {
		if _, ok := TapOwner(filepath.Base(p)); ok {
			taps = append(taps, filepath.Base(p))
		}
	}
	return taps
}
