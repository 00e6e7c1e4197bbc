package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/labctl/lab/host"
	"github.com/labctl/lab/labtest"
)

// A fresh user, after lab host setup --user, is in the lab group, maps
// root of a user namespace of its own to its subordinate range (through
// newuidmap), and moves itself into the cgroups it was given; --remove
// takes the group and the cgroups back.
func TestIntegrationHostSetupUser(t *testing.T) {
	usr := labtest.NewUser(t, "labt")
	name := usr.Name
	as := func(script string) (string, error) {
		cmd := exec.Command("runuser", "-u", name, "--", "sh", "-c", script)
		cmd.Dir = "/"
		b, err := cmd.CombinedOutput()
		return string(b), err
	}

	lab := labtest.Binary(t)
	b := []byte(usr.Setup())
	assert.Contains(t, string(b), "group lab: added "+name)
	assert.Regexp(t, `ids: `+name+` (has|added) [0-9]+-[0-9]+ in /etc/subuid`, string(b))
	assert.Contains(t, string(b), "cgroups: "+name+" owns lab-"+name)
	assert.Regexp(t, "network helper: (installed "+host.HelperPath+"|"+host.HelperPath+" is installed)", string(b))
	assert.Regexp(t, "kernel limits: (raised|enough) for 30 containers at once", string(b))
	low, err := host.Default.Check(30)
	require.NoError(t, err)
	assert.Empty(t, low, "a user's lab up cannot raise them: setup did")
	groups, err := exec.Command("id", "-nG", name).Output()
	require.NoError(t, err)
	assert.Contains(t, strings.Fields(string(groups)), "lab")

	m, err := as("unshare --user --map-auto --map-root-user sh -c 'id -u; cat /proc/self/uid_map'")
	require.NoError(t, err, m)
	lines := strings.Split(strings.TrimSpace(m), "\n")
	require.Len(t, lines, 3, m)
	assert.Equal(t, "0", lines[0], "root in the user's namespace")
	assert.Regexp(t, `^1 +[1-9][0-9]+ +65535$`, strings.TrimSpace(lines[2]), "the rest of its ids are its subordinate range")

	if _, err := os.Stat("/run/systemd/system"); err == nil {
		t.Skip("the rest is about the cgroups a host without systemd gives the user")
	}
	dirs := labtest.Cgroups(name)
	require.NotEmpty(t, dirs)
	c, err := as(`for d in /sys/fs/cgroup/*/lab-` + name + `; do echo $$ > $d/cgroup.procs || exit 1; done; cat /proc/self/cgroup`)
	require.NoError(t, err, c)
	assert.Contains(t, c, ":memory:/lab-"+name)
	assert.Contains(t, c, ":name=systemd:/lab-"+name)

	b, err = exec.Command(lab, "host", "setup", "--user", name).CombinedOutput()
	require.NoError(t, err, "again: %s", b)
	assert.Contains(t, string(b), "group lab: "+name+" is a member")
	assert.Contains(t, string(b), "network helper: "+host.HelperPath+" is installed")

	t.Run("network helper", func(t *testing.T) { helperAsUser(t, name) })
	// Its own image, bootstrapped in its namespace; the VM lab's come from root's shared cache.
	t.Run("a lab without root", func(t *testing.T) { rootlessLabAsUser(t, usr.With("LAB_SHARED_CACHE=none")) })
	t.Run("VM nodes without root", func(t *testing.T) { vmLabAsUser(t, usr) })

	b, err = exec.Command(lab, "host", "setup", "--user", name, "--remove").CombinedOutput()
	require.NoError(t, err, "%s", b)
	assert.Empty(t, labtest.Cgroups(name))
	groups, err = exec.Command("id", "-nG", name).Output()
	require.NoError(t, err)
	assert.NotContains(t, strings.Fields(string(groups)), "lab")
	denied, ok := asHelper(t, name, `{"op": "down", "lab": "hlp"}`)
	assert.False(t, ok)
	assert.Contains(t, denied, "Permission denied", "the helper is the group's only")

	b, err = exec.Command(lab, "host", "setup", "--user", "root").CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(b), "--user names a user that is not root")
	b, err = exec.Command(lab, "host", "setup", "--user", "nosuch-"+name).CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(b), `user "nosuch-`+name+`": no such user on this machine`)
}
