// Package host checks and raises the kernel limits that many system
// containers on one machine run into. With a machine's defaults
// (fs.inotify.max_user_instances=128, kernel.keys.maxkeys=200) about 20
// systemd containers start, and the next ones stop at boot or hang in
// "initializing": each container's systemd takes inotify instances, and
// its services' users (the same host uids in every privileged container)
// share one key quota. The needs below grow with the number of containers
// running at once; lab only ever raises a limit, never lowers one.
package host

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// A Limit is one kernel setting and what a number of nodes need of it.
type Limit struct {
	Key  string `json:"key"` // as sysctl names it: fs.inotify.max_user_instances
	Have int64  `json:"have"`
	Need int64  `json:"need"`
	Why  string `json:"why"`
}

func (l Limit) String() string { return fmt.Sprintf("%s %d → %d", l.Key, l.Have, l.Need) }

// need is what n running containers need of one setting.
type need struct {
	key  string
	base int64 // enough for the host itself
	per  int64 // more for each container
	why  string
}

var needs = []need{
	{"fs.inotify.max_user_instances", 128, 16, "each container's systemd and journald watch files with inotify"},
	{"fs.inotify.max_user_watches", 65536, 1024, "the watches of those inotify instances"},
	{"kernel.keys.maxkeys", 200, 20, "the services of every container share the key quota of their users' uids"},
	{"kernel.keys.maxbytes", 20000, 25000, "the bytes of those keys"},
	{"kernel.pid_max", 4096, 64, "every container's processes and threads"},
}

// Sysctl reads and writes kernel settings under Root (/proc/sys).
type Sysctl struct{ Root string }

// Default is the machine's own settings.
var Default = Sysctl{Root: "/proc/sys"}

func (s Sysctl) path(key string) string {
	return filepath.Join(s.Root, strings.ReplaceAll(key, ".", "/"))
}

// Get reads a setting (the first number, for settings with several).
func (s Sysctl) Get(key string) (int64, error) {
	b, err := os.ReadFile(s.path(key))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, fmt.Errorf("%s: empty", key)
	}
	return strconv.ParseInt(f[0], 10, 64)
}

// Set writes a setting.
func (s Sysctl) Set(key string, v int64) error {
	return os.WriteFile(s.path(key), []byte(strconv.FormatInt(v, 10)+"\n"), 0o644)
}

// Check returns every setting too low for n containers running at once.
func (s Sysctl) Check(n int) ([]Limit, error) {
	var low []Limit
	for _, nd := range needs {
		have, err := s.Get(nd.key)
		if err != nil {
			continue // a kernel without this setting has no such limit
		}
		if want := nd.base + nd.per*int64(n); have < want {
			low = append(low, Limit{Key: nd.key, Have: have, Need: want, Why: nd.why})
		}
	}
	return low, nil
}

// Raise sets each limit to what it needs.
func (s Sysctl) Raise(limits []Limit) error {
	for _, l := range limits {
		if err := s.Set(l.Key, l.Need); err != nil {
			return fmt.Errorf("raise %s to %d: %w", l.Key, l.Need, err)
		}
	}
	return nil
}

// Needs lists what n containers need of every setting, with what the
// machine has, whether too low or not.
func (s Sysctl) Needs(n int) []Limit {
	var out []Limit
	for _, nd := range needs {
		have, err := s.Get(nd.key)
		if err != nil {
			have = -1
		}
		out = append(out, Limit{Key: nd.key, Have: have, Need: nd.base + nd.per*int64(n), Why: nd.why})
	}
	return out
}

// PersistPath is the file that makes lab's limits last past a reboot.
const PersistPath = "/etc/sysctl.d/60-lab.conf"

// PersistFile is its content: each setting at the larger of what the
// machine has and what n containers need.
func PersistFile(limits []Limit, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by lab host-limits: kernel limits for %d system containers at once.\n", n)
	for _, l := range limits {
		fmt.Fprintf(&b, "# %s\n%s = %d\n", l.Why, l.Key, max(l.Have, l.Need))
	}
	return b.String()
}
