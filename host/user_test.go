package host

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const mountinfo = `30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 30 0:30 / /sys/fs/cgroup/cpuset rw,relatime shared:9 - cgroup cgroup rw,cpuset
39 30 0:36 / /sys/fs/cgroup/name\040with\040space rw,relatime - cgroup cgroup rw,name=systemd
40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`

// fakeRoot is a folder that stands for /: a mountinfo and the hierarchies
// it names, cpuset's with its files.
func fakeRoot(t *testing.T) *User {
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "proc/self"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "proc/self/mountinfo"), []byte(mountinfo), 0o644))
	for _, h := range []string{"cpu", "cpuset", "name with space", "unified"} {
		require.NoError(t, os.MkdirAll(filepath.Join(root, "sys/fs/cgroup", h), 0o755))
	}
	require.NoError(t, os.WriteFile(filepath.Join(root, "sys/fs/cgroup/cpuset/cpuset.cpus"), []byte("0-1\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(root, "sys/fs/cgroup/cpuset/cpuset.mems"), []byte("0\n"), 0o644))
	return &User{Name: "alice", UID: 4242, GID: 4343, Etc: filepath.Join(root, "etc"), Root: root}
}

func TestHierarchies(t *testing.T) {
	u := fakeRoot(t)
	hs, err := u.Hierarchies()
	require.NoError(t, err)
	cg := filepath.Join(u.Root, "sys/fs/cgroup")
	assert.Equal(t, []string{cg + "/cpu", cg + "/cpuset", cg + "/name with space"}, hs, "v1 only, escapes undone")
}

// The user's cgroups are made in each v1 hierarchy, owned by the user, with
// cpuset's inherited; made again, nothing changes; removed, they are gone.
func TestUserCgroups(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown needs root")
	}
	u := fakeRoot(t)
	// The kernel gives a new cpuset cgroup empty cpus and mems.
	mine := filepath.Join(u.Root, "sys/fs/cgroup/cpuset/lab-alice")
	require.NoError(t, os.Mkdir(mine, 0o755))
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		require.NoError(t, os.WriteFile(filepath.Join(mine, f), []byte("\n"), 0o644))
	}
	var out bytes.Buffer
	require.NoError(t, u.makeCgroups(&out))
	assert.Contains(t, out.String(), "alice owns lab-alice in 3 hierarchies")
	dirs, err := u.CgroupDirs()
	require.NoError(t, err)
	for _, d := range dirs {
		fi, err := os.Stat(d)
		require.NoError(t, err)
		st := fi.Sys().(*syscall.Stat_t)
		assert.Equal(t, []uint32{4242, 4343}, []uint32{st.Uid, st.Gid}, d)
	}
	b, err := os.ReadFile(filepath.Join(u.Root, "sys/fs/cgroup/cpuset/lab-alice/cpuset.cpus"))
	require.NoError(t, err, "a cpuset cgroup has its parent's cpus")
	assert.Equal(t, "0-1\n", string(b))
	require.NoError(t, u.makeCgroups(&out), "again: nothing to do")

	// A cgroup with something in it (here cpuset's files) is in use.
	err = u.removeCgroups(&out)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is in use (a lab of alice runs)")
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		require.NoError(t, os.Remove(filepath.Join(u.Root, "sys/fs/cgroup/cpuset/lab-alice", f)))
	}
	out.Reset()
	require.NoError(t, u.removeCgroups(&out))
	assert.Contains(t, out.String(), "removed lab-alice from 2 hierarchies") // cpu went on the first try
	for _, d := range dirs {
		assert.NoDirExists(t, d)
	}
}

func TestUserCgroupsWithSystemd(t *testing.T) {
	u := fakeRoot(t)
	require.NoError(t, os.MkdirAll(filepath.Join(u.Root, "run/systemd/system"), 0o755))
	var out bytes.Buffer
	require.NoError(t, u.makeCgroups(&out))
	assert.Contains(t, out.String(), "systemd delegates")
	assert.NoDirExists(t, filepath.Join(u.Root, "sys/fs/cgroup/cpu/lab-alice"))
}

func TestUserSubIDsAndName(t *testing.T) {
	u := fakeRoot(t)
	require.NoError(t, os.MkdirAll(u.Etc, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(u.Etc, "subuid"), []byte("root:100000:65536\n"), 0o644))
	var out bytes.Buffer
	require.NoError(t, u.subIDs(&out, "subuid"))
	require.NoError(t, u.subIDs(&out, "subuid"))
	assert.Equal(t, "ids: alice added 165536-231071 in "+u.Etc+"/subuid\nids: alice has 165536-231071 in "+u.Etc+"/subuid\n", out.String())

	assert.Equal(t, "lab-alice", u.CgroupName())
	u.Name = "Odd.Name"
	assert.Equal(t, "lab-u4242", u.CgroupName(), "a name unfit for a path is the uid")
}
