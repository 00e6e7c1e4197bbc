package topology

import (
	"fmt"
	"strings"
	"time"
)

// Test is one entry of the lab file's tests: list, which lab test runs in
// file order once every health check passes: a shell command on the host
// (with the lab's LAB_* facts), or in one node when Node is set.
type Test struct {
	Name    string `yaml:"name"`
	Run     string `yaml:"run"`
	Node    string `yaml:"node"`
	Timeout string `yaml:"timeout"`
	// Within makes the test a claim the lab reaches within this time after
	// it is up (replication caught up, gossip converged): while it fails,
	// it runs again every second until it passes or the time is up.
	Within string `yaml:"within"`
}

// DefaultTestTimeout bounds a test that gives no timeout.
const DefaultTestTimeout = 10 * time.Minute

// Title is the test's name, or "test N" (1-based) when it has none.
func (t Test) Title(i int) string {
	if t.Name != "" {
		return t.Name
	}
	return fmt.Sprintf("test %d", i+1)
}

// Limit is how long the test may run.
func (t Test) Limit() time.Duration {
	if d, err := time.ParseDuration(t.Timeout); err == nil && d > 0 {
		return d
	}
	return DefaultTestTimeout
}

// Patience is how long the test may keep failing before it counts as
// failed (its within:), or 0: one run.
func (t Test) Patience() time.Duration {
	if d, err := time.ParseDuration(t.Within); err == nil && d > 0 {
		return d
	}
	return 0
}

// HasNode tells whether name is one of the nodes the file makes (role
// plus index, within the role's count).
func (t *Topology) HasNode(name string) bool {
	for i := range t.Nodes {
		r := &t.Nodes[i]
		if strings.HasPrefix(name, r.Role) && r.hasIndex(strings.TrimPrefix(name, r.Role)) {
			return true
		}
	}
	return false
}

// nodeNames lists every node the file makes, for messages.
func (t *Topology) nodeNames() []string {
	var out []string
	for i := range t.Nodes {
		out = append(out, t.Nodes[i].Names()...)
	}
	return out
}

// noNode says that a name is none of the file's nodes, with the nearest
// one or, in a small lab, all of them.
func (t *Topology) noNode(name string) string {
	names := t.nodeNames()
	hint := ""
	if s := suggest(name, names); s != "" {
		hint = fmt.Sprintf(" (did you mean %q?)", s)
	} else if len(names) > 0 && len(names) <= 20 {
		hint = " (nodes: " + strings.Join(names, ", ") + ")"
	}
	return fmt.Sprintf("no node %q in this lab%s", Cut(name), hint)
}

func (t *Topology) validateTests(at reporter) {
	seen := map[string]int{}
	for i, test := range t.Tests {
		path := fmt.Sprintf("tests[%d]", i)
		if strings.TrimSpace(test.Run) == "" {
			at(path+".run", "required: the shell command that passes when it exits 0")
		}
		if test.Node != "" && !t.HasNode(test.Node) {
			at(path+".node", "%s", t.noNode(test.Node))
		}
		if test.Timeout != "" {
			checkDuration(at, path+".timeout", test.Timeout, time.Second)
		}
		if test.Within != "" {
			checkDuration(at, path+".within", test.Within, time.Second)
		}
		title := test.Title(i)
		if j, dup := seen[title]; dup {
			at(path+".name", "%q is also the name of tests[%d]: a report needs each test's own name", Cut(title), j)
		}
		seen[title] = i
	}
}
