package main

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/labctl/lab/host"
	"github.com/labctl/lab/labtest"
)

// 30 nodes on a machine with the kernel's default limits: lab up raises
// what is too low, says so once, and every node boots. (With the defaults
// left as they are, about 20 start and the rest stop or hang at boot.)
func TestIntegrationThirtyNodesRaiseLimits(t *testing.T) {
	labtest.Integration(t)
	defaults := map[string]int64{"fs.inotify.max_user_instances": 128, "kernel.keys.maxkeys": 200, "kernel.keys.maxbytes": 20000}
	for k, v := range defaults {
		was, err := host.Default.Get(k)
		require.NoError(t, err)
		t.Cleanup(func() { _ = host.Default.Set(k, was) }) // after the lab is gone
		require.NoError(t, host.Default.Set(k, v))
	}
	l := labtest.New(t, "it-scale", map[string]string{"lab.yaml": `
name: it-scale
networks: [{name: lan, subnet: 10.97.24.0/22}]
defaults: {memory: 128M}
nodes:
  - role: n
    count: 30
`})
	_, stderr, code := l.Run("up")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stderr, "raised kernel limits for 30 containers: fs.inotify.max_user_instances 128 → 608, kernel.keys.maxkeys 200 → 800")
	st := l.Status()
	require.Len(t, st, 30)
	for i := 1; i <= 30; i++ {
		n := fmt.Sprintf("n%d", i)
		assert.Equal(t, "running", st[n].State, n)
	}
	out, _ := l.Exec("n30", "systemctl", "is-system-running")
	assert.Contains(t, []string{"running\n", "degraded\n"}, out, "n30's systemd finished booting")
	l.MustRun("destroy")
}
