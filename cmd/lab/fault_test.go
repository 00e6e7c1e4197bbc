package main

import (
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/labctl/lab/labtest"
)

const faultLab = `
name: it-flt
networks: [{name: lan, subnet: 10.97.18.0/24}]
defaults: {memory: 256M}
nodes:
  - role: n
    count: 3
    provision: [{shell: listen.sh, env: {PORT: "7000"}}]
`

var rttRe = regexp.MustCompile(`time=([0-9.]+) ms`)

// rtts pings to from a node and returns the round trips in ms.
func rtts(t *testing.T, l *labtest.Lab, from, to string) []float64 {
	out, _ := l.Exec(from, "ping", "-c", "3", "-i", "0.2", "-W", "3", to)
	var ms []float64
	for _, m := range rttRe.FindAllStringSubmatch(out, -1) {
		v, err := strconv.ParseFloat(m[1], 64)
		require.NoError(t, err)
		ms = append(ms, v)
	}
	require.NotEmpty(t, ms, "no reply from %s to %s:\n%s", from, to, out)
	return ms
}

func faultID(t *testing.T, l *labtest.Lab, args ...string) string {
	out := strings.TrimSpace(l.MustRun(append([]string{"fault"}, args...)...))
	require.Regexp(t, `^f[0-9]+$`, out)
	return out
}

// Faults on demand against real nodes: delay, partition, pause and kill,
// each healed exactly; bad requests are usage errors; destroy removes all.
func TestIntegrationFaults(t *testing.T) {
	labtest.Integration(t)
	l := labtest.New(t, "it-flt", map[string]string{"lab.yaml": faultLab, "listen.sh": listenSh})
	l.MustRun("up")

	// delay: every round trip to n1 takes at least the delay; heal restores.
	id := faultID(t, l, "delay", "n1", "200ms")
	for _, ms := range rtts(t, l, "n2", "n1") {
		assert.GreaterOrEqual(t, ms, 200.0)
	}
	_, stderr, code := l.Run("fault", "delay", "n1", "100ms")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "in force already as "+id)
	l.MustRun("fault", "heal", id)
	// Back at bridge speed: the fastest of the round trips shows it (one
	// slow sample on a loaded machine is the scheduler, not the lab).
	assert.Less(t, slices.Min(rtts(t, l, "n2", "n1")), 5.0)

	// delay --to: only traffic from n3 is slowed.
	id = faultID(t, l, "delay", "n1", "150ms", "--to", "n3")
	assert.GreaterOrEqual(t, slices.Min(rtts(t, l, "n3", "n1")), 150.0)
	assert.Less(t, slices.Min(rtts(t, l, "n2", "n1")), 50.0)
	l.MustRun("fault", "heal", id)

	// partition: TCP fails both ways, heal restores it.
	id = faultID(t, l, "partition", "n1", "n2")
	_, code = connect(l, "n1", "10.97.18.12:7000")
	assert.NotEqual(t, 0, code)
	_, code = connect(l, "n2", "10.97.18.11:7000")
	assert.NotEqual(t, 0, code)
	out, code := connect(l, "n3", "10.97.18.11:7000")
	assert.Equal(t, 0, code, "n3 is on neither side")
	assert.Contains(t, out, "n1")
	status := l.MustRun("status")
	assert.Contains(t, status, "fault "+id+": partition n1 n2")
	l.MustRun("fault", "heal", id)
	out, code = connect(l, "n1", "10.97.18.12:7000")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "n2")

	// pause: n2 answers nothing; heal thaws it without a reboot.
	initPID := l.InitPID("n2")
	require.NotZero(t, initPID)
	id = faultID(t, l, "pause", "n2")
	_, code = connect(l, "n1", "10.97.18.12:7000")
	assert.NotEqual(t, 0, code, "a paused node answers nothing")
	assert.Equal(t, "paused", l.Status()["n2"].State)
	l.MustRun("fault", "heal", id)
	out, code = connect(l, "n1", "10.97.18.12:7000")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "n2")
	assert.Equal(t, initPID, l.InitPID("n2"), "healed without a reboot")

	// kill: n3 stops hard; up leaves it so; heal boots it again.
	id = faultID(t, l, "kill", "n3")
	assert.Equal(t, "stopped", l.Status()["n3"].State)
	plan := l.MustRun("plan")
	assert.Contains(t, plan, "fault "+id+" (kill) in force")
	l.MustRun("up")
	assert.Equal(t, "stopped", l.Status()["n3"].State, "up leaves faults in force")
	l.MustRun("fault", "heal", id)
	assert.Equal(t, "running", l.Status()["n3"].State)
	out, code = connect(l, "n1", "10.97.18.13:7000")
	assert.Equal(t, 0, code, "n3's services are back")
	assert.Contains(t, out, "n3")

	// Bad requests: exit 2 and one line.
	for _, args := range [][]string{
		{"delay", "n1", "-5ms"}, {"delay", "n1", "10ms", "--loss", "150%"}, {"partition", "n1", "n1"},
		{"partition", "n", "n2"}, {"pause", "nope1"}, {"heal", "f999"}, {"delay", "n1", "fast"},
	} {
		_, stderr, code := l.Run(append([]string{"fault"}, args...)...)
		assert.Equal(t, 2, code, "%v: %s", args, stderr)
		assert.Equal(t, 1, strings.Count(strings.TrimSpace(stderr), "\n")+1, "%v: one line: %s", args, stderr)
	}

	// Faults in force at destroy go with it.
	faultID(t, l, "delay", "n1", "50ms", "--loss", "1%")
	faultID(t, l, "partition", "n2", "n3", "--oneway")
	faultID(t, l, "pause", "n2")
	var list struct {
		Faults []struct {
			ID, Kind string
			Nodes    []string
		} `json:"faults"`
	}
	require.NoError(t, json.Unmarshal([]byte(l.MustRun("fault", "list", "--json")), &list))
	assert.Len(t, list.Faults, 3)
	l.MustRun("destroy")
	labtest.AssertNoLeaks(t, "it-flt", l.Dir)
}
