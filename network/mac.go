package network

import (
	"context"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strings"
)

// BridgeMAC is a lab bridge's own MAC address: fixed by its name, locally
// administered, unicast. A bridge whose address nobody set takes the lowest
// of its ports' addresses, and liblxc's veths and libvirt's taps are all
// fe:… and random: a node that left the lab (a kill, a scale-down, a
// restart) could take the host's address on the lab's network with it, and
// what the nodes sent the host (dnsmasq's questions too) went to an address
// nobody had until their ARP caches moved on.
func BridgeMAC(bridge string) string {
	h := fnv.New64a()
	h.Write([]byte(bridge))
	s := h.Sum64()
	return fmt.Sprintf("02:%02x:%02x:%02x:%02x:%02x", byte(s>>32), byte(s>>24), byte(s>>16), byte(s>>8), byte(s))
}

// fixMAC gives bridge its BridgeMAC unless its address was set already
// (addr_assign_type 3): a bridge made before lab set it gets it once.
func fixMAC(ctx context.Context, bridge string) error {
	t, err := os.ReadFile(filepath.Join("/sys/class/net", bridge, "addr_assign_type"))
	if err != nil {
		return err
	}
	if strings.TrimSpace(string(t)) == "3" {
		return nil
	}
	if _, err := run(ctx, "ip", "link", "set", bridge, "address", BridgeMAC(bridge)); err != nil {
		return fmt.Errorf("set its MAC address: %w", err)
	}
	return nil
}
