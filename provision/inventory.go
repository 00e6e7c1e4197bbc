package provision

import (
	"fmt"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/labctl/lab/topology"
)

// sshArgs are the options lab's own ssh connections use: nodes are
// disposable, their host keys change with every lab.
const sshArgs = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"

func hostVars(lab *topology.Lab, n topology.Node, key string) map[string]string {
	v := map[string]string{
		"ansible_host":               n.IP().String(),
		"ansible_user":               "root",
		"ansible_python_interpreter": "/usr/bin/python3",
		"ansible_ssh_common_args":    sshArgs,
	}
	if key != "" {
		v["ansible_ssh_private_key_file"] = key
	}
	if p := n.Spec.SSHPortOf(); p != 22 {
		v["ansible_port"] = fmt.Sprint(p)
	}
	for k, val := range Facts(lab, n) {
		v[strings.ToLower(k)] = val
	}
	return v
}

// InventoryINI renders an Ansible inventory: a group per role, the lab's
// facts as host variables (lab_ip, lab_role_pg_ips, …).
func InventoryINI(lab *topology.Lab, key string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Ansible inventory of lab %s, written by lab. Nodes reach SSH with ssh: true.\n", lab.Name)
	for _, r := range lab.Topology.Nodes {
		fmt.Fprintf(&b, "\n[%s]\n", groupName(r.Role))
		for _, n := range lab.RoleNodes(r.Role) {
			vars := hostVars(lab, n, key)
			keys := make([]string, 0, len(vars))
			for k := range vars {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			b.WriteString(n.Name)
			for _, k := range keys {
				fmt.Fprintf(&b, " %s=%s", k, iniQuote(vars[k]))
			}
			b.WriteString("\n")
		}
	}
	fmt.Fprintf(&b, "\n[%s:children]\n", groupName(lab.Name))
	for _, r := range lab.Topology.Nodes {
		b.WriteString(groupName(r.Role) + "\n")
	}
	return b.String()
}

// groupName makes a valid Ansible group name (no dashes).
func groupName(s string) string { return strings.ReplaceAll(s, "-", "_") }

func iniQuote(v string) string {
	if v == "" || strings.ContainsAny(v, " \t'\"=#;") {
		return "'" + strings.ReplaceAll(v, "'", `\'`) + "'"
	}
	return v
}

// InventoryYAML is the same inventory in Ansible's YAML form.
func InventoryYAML(lab *topology.Lab, key string) string {
	type group struct {
		Hosts map[string]map[string]string `yaml:"hosts"`
	}
	children := map[string]group{}
	for _, r := range lab.Topology.Nodes {
		g := group{Hosts: map[string]map[string]string{}}
		for _, n := range lab.RoleNodes(r.Role) {
			g.Hosts[n.Name] = hostVars(lab, n, key)
		}
		children[groupName(r.Role)] = g
	}
	doc := map[string]any{"all": map[string]any{"children": map[string]any{groupName(lab.Name): map[string]any{"children": children}}}}
	b, _ := yaml.Marshal(doc)
	return fmt.Sprintf("# Ansible inventory of lab %s, written by lab.\n%s", lab.Name, b)
}

// SSHConfig renders an OpenSSH client config with a Host entry per node,
// reachable by name and by FQDN.
func SSHConfig(lab *topology.Lab, key string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# OpenSSH config for lab %s, written by lab: ssh -F THIS-FILE NODE\n", lab.Name)
	for _, n := range lab.Nodes {
		fmt.Fprintf(&b, "\nHost %s %s\n  HostName %s\n  User root\n", n.Name, lab.FQDN(n), n.IP())
		if p := n.Spec.SSHPortOf(); p != 22 {
			fmt.Fprintf(&b, "  Port %d\n", p)
		}
		if key != "" {
			fmt.Fprintf(&b, "  IdentityFile %s\n  IdentitiesOnly yes\n", key)
		}
		b.WriteString("  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n")
	}
	return b.String()
}
