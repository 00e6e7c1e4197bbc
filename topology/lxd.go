package topology

import (
	"fmt"
	"regexp"
)

// LXD is where a lab's nodes of provider lxd live: a remote of LXD's
// client (lxc remote list; "" or local: the local LXD) and a project in
// it ("": default). LAB_LXD_REMOTE and LAB_LXD_PROJECT override them.
type LXD struct {
	Remote  string `yaml:"remote"`
	Project string `yaml:"project"`
}

// RoleLXD pins a role's nodes to members of the cluster.
type RoleLXD struct {
	Target Members `yaml:"target"`
}

// Members are cluster members: one (target: m2) or a list (target: [m1,
// m2]), which the role's nodes go round in order, one each: LXD 5.0 has
// no rule to keep a role's nodes apart, and a lab that tests replication
// across machines needs them apart.
type Members []string

// UnmarshalScalar takes one member written as a plain string.
func (m *Members) UnmarshalScalar(s string) error {
	*m = Members{s}
	return nil
}

// TargetOf is the member node index (1-based) of the role is pinned to
// ("": anywhere).
func (r *Role) TargetOf(index int) string {
	if r.LXD == nil || len(r.LXD.Target) == 0 || index < 1 {
		return ""
	}
	return r.LXD.Target[(index-1)%len(r.LXD.Target)]
}

// lxdNameRe is what LXD takes as a remote, project or member name.
var lxdNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// ValidLXDName tells whether s is a name LXD takes for a remote, a project
// or a member (LAB_LXD_REMOTE is checked as the lab file's lxd.remote is).
func ValidLXDName(s string) bool { return lxdNameRe.MatchString(s) }

func (t *Topology) validateLXD(at reporter) {
	for k, v := range map[string]string{"lxd.remote": t.LXD.Remote, "lxd.project": t.LXD.Project} {
		if v != "" && !lxdNameRe.MatchString(v) {
			at(k, "%q: want letters, digits, '.', '_' or '-' (a name lxc remote list or lxc project list shows)", Cut(v))
		}
	}
	for i := range t.Nodes {
		r := &t.Nodes[i]
		if r.LXD == nil {
			continue
		}
		path := rolePath(i, "lxd.target")
		switch {
		case r.Provider != "lxd":
			at(path, "pins nodes to an LXD cluster member, but role %s's provider is %s, not lxd", r.Role, r.Provider)
			continue
		case len(r.LXD.Target) == 0:
			at(path, "required in lxd: the cluster member (or a list of members) to put the role's nodes on (lxc cluster list)")
		}
		for j, m := range r.LXD.Target {
			p := path
			if len(r.LXD.Target) > 1 {
				p = rolePath(i, fmt.Sprintf("lxd.target[%d]", j))
			}
			if !lxdNameRe.MatchString(m) {
				at(p, "%q: want a member name as lxc cluster list shows it", Cut(m))
			}
		}
	}
}
