package provision

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/labctl/lab/topology"
)

// RoleKey turns a role name into the part of a variable name: nginx-lb →
// NGINX_LB.
func RoleKey(role string) string {
	return strings.ToUpper(strings.ReplaceAll(role, "-", "_"))
}

// Facts are the LAB_* variables every step of a node sees.
func Facts(lab *topology.Lab, n topology.Node) map[string]string {
	f := map[string]string{
		"LAB_NAME":  lab.Name,
		"LAB_NODE":  n.Name,
		"LAB_ROLE":  n.Role,
		"LAB_INDEX": strconv.Itoa(n.Index),
		"LAB_IP":    n.IP().String(),
		"LAB_FQDN":  lab.FQDN(n),
	}
	if ip6 := n.IP6(); ip6.IsValid() {
		f["LAB_IP6"] = ip6.String()
	}
	if len(n.Interfaces) > 0 {
		if net := lab.Network(n.Interfaces[0].Network); net != nil {
			f["LAB_DOMAIN"] = net.Domain
			f["LAB_SUBNET"] = net.Subnet.String()
			host, host6 := net.HostAddrs()
			f["LAB_HOST_IP"] = host.String()
			if net.Subnet6.IsValid() {
				f["LAB_SUBNET6"] = net.Subnet6.String()
				f["LAB_HOST_IP6"] = host6.String()
			}
		}
	}
	var roles, all []string
	for _, r := range lab.Topology.Nodes {
		roles = append(roles, r.Role)
		var names, ips, ips6 []string
		for _, m := range lab.RoleNodes(r.Role) {
			names = append(names, m.Name)
			ips = append(ips, m.IP().String())
			if a := m.IP6(); a.IsValid() {
				ips6 = append(ips6, a.String())
			}
		}
		all = append(all, names...)
		k := RoleKey(r.Role)
		f["LAB_ROLE_"+k+"_NODES"] = strings.Join(names, " ")
		f["LAB_ROLE_"+k+"_IPS"] = strings.Join(ips, " ")
		f["LAB_ROLE_"+k+"_COUNT"] = strconv.Itoa(len(names))
		if len(ips6) > 0 {
			f["LAB_ROLE_"+k+"_IPS6"] = strings.Join(ips6, " ")
		}
		var fl, fl6 []string
		for _, a := range lab.Floating(r.Role) {
			fl = append(fl, a.Addr.String())
			if a.Addr6.IsValid() {
				fl6 = append(fl6, a.Addr6.String())
			}
		}
		if len(fl) > 0 {
			f["LAB_ROLE_"+k+"_FLOATING"] = strings.Join(fl, " ")
		}
		if len(fl6) > 0 {
			f["LAB_ROLE_"+k+"_FLOATING6"] = strings.Join(fl6, " ")
		}
		if len(ips) > 0 {
			f["LAB_ROLE_"+k+"_IPS_FIRST"] = ips[0]
		}
	}
	f["LAB_ROLES"] = strings.Join(roles, " ")
	f["LAB_NODES"] = strings.Join(all, " ")
	return f
}

// HostFacts are the LAB_* variables of commands lab runs on the host (the
// tests of lab test): the lab's own facts (those of no one node), and each
// node's address as LAB_NODE_<NODE>_IP, since the host does not resolve the
// lab's names.
func HostFacts(lab *topology.Lab) map[string]string {
	f := map[string]string{"LAB_NAME": lab.Name}
	if len(lab.Nodes) > 0 {
		for k, v := range Facts(lab, lab.Nodes[0]) {
			switch k {
			case "LAB_NODE", "LAB_ROLE", "LAB_INDEX", "LAB_IP", "LAB_IP6", "LAB_FQDN":
			default:
				f[k] = v
			}
		}
	}
	for _, n := range lab.Nodes {
		f["LAB_NODE_"+RoleKey(n.Name)+"_IP"] = n.IP().String()
		if a := n.IP6(); a.IsValid() {
			f["LAB_NODE_"+RoleKey(n.Name)+"_IP6"] = a.String()
		}
	}
	return f
}

// Env renders facts as sorted KEY=VALUE pairs.
func Env(facts map[string]string) []string {
	out := make([]string, 0, len(facts))
	for k, v := range facts {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// factsDoc is /etc/lab/facts.json.
type factsDoc struct {
	Lab    string               `json:"lab"`
	Node   string               `json:"node"`
	Role   string               `json:"role"`
	Index  int                  `json:"index"`
	IP     string               `json:"ip"`
	IP6    string               `json:"ip6,omitempty"`
	FQDN   string               `json:"fqdn"`
	Domain string               `json:"domain"`
	Roles  map[string]roleFacts `json:"roles"`
	Nodes  []nodeFacts          `json:"nodes"`
	Env    map[string]string    `json:"env"`
}

type roleFacts struct {
	Nodes []string `json:"nodes"`
	IPs   []string `json:"ips"`
	IPs6  []string `json:"ips6,omitempty"`
}

type nodeFacts struct {
	Name  string `json:"name"`
	Role  string `json:"role"`
	Index int    `json:"index"`
	IP    string `json:"ip"`
	IP6   string `json:"ip6,omitempty"`
	FQDN  string `json:"fqdn"`
}

func addr6(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// FactsJSON is the content of /etc/lab/facts.json for a node.
func FactsJSON(lab *topology.Lab, n topology.Node) string {
	f := Facts(lab, n)
	d := factsDoc{Lab: lab.Name, Node: n.Name, Role: n.Role, Index: n.Index, IP: n.IP().String(), IP6: addr6(n.IP6()), FQDN: lab.FQDN(n),
		Domain: f["LAB_DOMAIN"], Roles: map[string]roleFacts{}, Env: f}
	for _, r := range lab.Topology.Nodes {
		rf := roleFacts{Nodes: []string{}, IPs: []string{}}
		for _, m := range lab.RoleNodes(r.Role) {
			rf.Nodes = append(rf.Nodes, m.Name)
			rf.IPs = append(rf.IPs, m.IP().String())
			if a := m.IP6(); a.IsValid() {
				rf.IPs6 = append(rf.IPs6, a.String())
			}
		}
		d.Roles[r.Role] = rf
	}
	for _, m := range lab.Nodes {
		d.Nodes = append(d.Nodes, nodeFacts{Name: m.Name, Role: m.Role, Index: m.Index, IP: m.IP().String(), IP6: addr6(m.IP6()), FQDN: lab.FQDN(m)})
	}
	b, _ := json.MarshalIndent(d, "", "  ")
	return string(b) + "\n"
}

// FactsEnvFile is /etc/lab/facts.env: the same facts for `. /etc/lab/facts.env`.
func FactsEnvFile(lab *topology.Lab, n topology.Node) string {
	var b strings.Builder
	for _, kv := range Env(Facts(lab, n)) {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Fprintf(&b, "%s='%s'\n", k, strings.ReplaceAll(v, "'", `'\''`))
	}
	return b.String()
}
