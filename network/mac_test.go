package network

import (
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A bridge's MAC is its own: the same for the same name, another for
// another name, locally administered and unicast (so no vendor's, and
// never a group address).
func TestBridgeMAC(t *testing.T) {
	a, err := net.ParseMAC(BridgeMAC("lab-todomvc-0"))
	require.NoError(t, err)
	assert.Equal(t, BridgeMAC("lab-todomvc-0"), a.String())
	assert.NotEqual(t, BridgeMAC("lab-todomvc-0"), BridgeMAC("lab-todomvc-1"))
	assert.Equal(t, byte(0x02), a[0]&0x03, "locally administered, unicast")
}
