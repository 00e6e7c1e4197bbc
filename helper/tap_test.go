package helper

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The host as the helper sees it: the user's (uid 1000) tap on its lab's
// bridge, root's tap, a bridge named like a VM port, another lab's bridge.
func testTaps() LabNets {
	owners := map[string]int{"v00000001-0": 1000, "v00000002-0": 0, "v00000005-0": 1000}
	masters := map[string]string{"v00000001-0": "lab-l-0", "v00000005-0": "lab-other-0"}
	nets := testNets()
	nets.Exists = func(n string) bool { _, tap := owners[n]; return tap || n == "v00000003-0" }
	nets.TapOwner = func(n string) (int, bool) { o, ok := owners[n]; return o, ok }
	nets.Master = func(n string) string { return masters[n] }
	return nets
}

func TestCheckTaps(t *testing.T) {
	nets := testTaps()
	tap := func(ports ...string) *Request { return &Request{Op: "tap", Lab: "l", Ports: ports} }
	untap := func(ports ...string) *Request { return &Request{Op: "untap", Lab: "l", Ports: ports} }
	require.NoError(t, CheckTaps(tap("v00000001-0", "v00000004-1"), "lab-l-0", 1000, nets), "the user's own, and a new one")
	require.NoError(t, CheckTaps(untap("v00000001-0", "v00000004-1"), "", 1000, nets), "one gone already is no matter")
	for name, tc := range map[string]struct {
		req    *Request
		bridge string
		want   string
	}{
		"not a VM port's name":    {tap("eth0"), "lab-l-0", `"eth0" is not a VM port's name`},
		"a path":                  {tap("../../../etc"), "lab-l-0", "is not a VM port's name"},
		"root's tap":              {untap("v00000002-0"), "", "v00000002-0 exists and is not a tap device of yours"},
		"a bridge named so":       {tap("v00000003-0"), "lab-l-0", "v00000003-0 exists and is not a tap device of yours"},
		"on another lab's bridge": {untap("v00000005-0"), "", "is on bridge lab-other-0, not one of lab l's"},
		"a bridge not the lab's":  {tap("v00000006-0"), "lab-x-0", "lab l has no bridge lab-x-0 up"},
		"none":                    {tap(), "lab-l-0", "0 ports, want 1 to 16"},
		"more than a node has":    {untap(make([]string, 17)...), "", "17 ports"},
	} {
		err := CheckTaps(tc.req, tc.bridge, 1000, nets)
		if assert.Error(t, err, name) {
			assert.Contains(t, err.Error(), tc.want, name)
		}
	}
}

// A VM node's port is in its lab's policy before the VM starts (the
// helper makes it then); a port of that form that exists must be on the
// lab's bridge like any other.
func TestCheckPolicyTakesAVMPortToBe(t *testing.T) {
	nets := testNets()
	nets.Exists = func(n string) bool { return n == "v00000003-0" }
	p := goodPolicy()
	p.Ports[0].Name = "v00000009-0"
	require.NoError(t, CheckPolicy(&p, "l", nets))
	p.Ports[0].Name = "v00000003-0"
	assert.ErrorContains(t, CheckPolicy(&p, "l", nets), `"v00000003-0" is not a port on lab l's bridge`)
	p.Ports[0].Name = "eth9"
	assert.ErrorContains(t, CheckPolicy(&p, "l", nets), `"eth9" is not a port on lab l's bridge`)
}
