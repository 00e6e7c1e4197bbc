package topology

import (
	"fmt"
	"path/filepath"
)

// Warnings are what the file may mean but should not do lightly, each
// once, as file:line: field: message.
func (t *Topology) Warnings() []string {
	out := []string{}
	var where []string
	if _, written := t.lines["defaults.privileged"]; written && t.Defaults.Privileged != nil && *t.Defaults.Privileged {
		where = append(where, "defaults.privileged")
	}
	for i := range t.Nodes {
		if _, written := t.lines[rolePath(i, "privileged")]; written && t.Nodes[i].IsPrivileged() {
			where = append(where, rolePath(i, "privileged"))
		}
	}
	if len(where) > 0 {
		out = append(out, fmt.Sprintf("%s:%d: %s: true: root in these nodes is root on the host (a script's mistake there is one on this machine); keep it for what needs it%s",
			filepath.Base(t.File), t.Line(where[0]), where[0], more(len(where)-1)))
	}
	return out
}

func more(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" (and %d more roles)", n)
}
