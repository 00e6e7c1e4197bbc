package topology

import "regexp"

// LXD is where a lab's nodes of provider lxd live: a remote of LXD's
// client (lxc remote list; "" or local: the local LXD) and a project in
// it ("": default). LAB_LXD_REMOTE and LAB_LXD_PROJECT override them.
type LXD struct {
	Remote  string `yaml:"remote"`
	Project string `yaml:"project"`
}

// RoleLXD pins a role's nodes to a member of the cluster.
type RoleLXD struct {
	Target string `yaml:"target"`
}

// TargetOf is the member the role's nodes are pinned to ("": anywhere).
func (r *Role) TargetOf() string {
	if r.LXD == nil {
		return ""
	}
	return r.LXD.Target
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
		case r.LXD.Target == "":
			at(path, "required in lxd: the cluster member to put the role's nodes on (lxc cluster list)")
		case !lxdNameRe.MatchString(r.LXD.Target):
			at(path, "%q: want a member name as lxc cluster list shows it", Cut(r.LXD.Target))
		}
	}
}
