package lxc

import (
	"os"
	"strconv"
	"strings"
)

// cgroupRoot is where cgroup hierarchies are mounted (a variable for tests).
var cgroupRoot = "/sys/fs/cgroup"

// controllerVersion tells which cgroup hierarchy has a controller: 2 for the
// unified one, 1 for a v1 hierarchy, 0 when it is nowhere. Machines run v1,
// v2, or both side by side (hybrid: v1 controllers, an empty unified tree).
func controllerVersion(ctrl string) int {
	for _, f := range []string{cgroupRoot + "/cgroup.controllers", cgroupRoot + "/unified/cgroup.controllers"} {
		if b, err := os.ReadFile(f); err == nil {
			for _, c := range strings.Fields(string(b)) {
				if c == ctrl {
					return 2
				}
			}
		}
	}
	if _, err := os.Stat(cgroupRoot + "/" + ctrl); err == nil {
		return 1
	}
	return 0
}

// cgroupLimits turns cpus and memory into LXC config items for whichever
// hierarchy holds each controller. CPUs become a CFS quota (cpus × period),
// not pinning, so nodes share every core.
func cgroupLimits(cpus int, memory int64) [][2]string {
	var out [][2]string
	const period = 100000
	if cpus > 0 {
		quota := strconv.Itoa(cpus * period)
		switch controllerVersion("cpu") {
		case 2:
			out = append(out, [2]string{"lxc.cgroup2.cpu.max", quota + " " + strconv.Itoa(period)})
		case 1:
			out = append(out,
				[2]string{"lxc.cgroup.cpu.cfs_period_us", strconv.Itoa(period)},
				[2]string{"lxc.cgroup.cpu.cfs_quota_us", quota})
		}
	}
	if memory > 0 {
		m := strconv.FormatInt(memory, 10)
		switch controllerVersion("memory") {
		case 2:
			out = append(out, [2]string{"lxc.cgroup2.memory.max", m})
		case 1:
			out = append(out, [2]string{"lxc.cgroup.memory.limit_in_bytes", m})
		}
	}
	return out
}
