package provision

import (
	"fmt"
	"sort"
	"strings"

	"github.com/labctl/lab/internal/shell"
	"github.com/labctl/lab/topology"
)

// NodeFiles is everything a node receives from lab before its steps run,
// made in this one place: /etc/hosts with every node, its hostname, a
// resolv.conf that points at its network's DNS, on a dual-stack network a
// gai.conf that puts IPv4 first, its facts, and with ssh:
// true the lab's public key for root. script runs after the files are in
// place (new SSH host keys, once). sshPub is the lab's public key ("" when
// no role asks for SSH).
func NodeFiles(lab *topology.Lab, n topology.Node, sshPub string) (files map[string]string, script string, err error) {
	files = map[string]string{
		"/etc/hosts":          lab.Hosts(),
		"/etc/hostname":       n.Name + "\n",
		"/etc/lab/facts.json": FactsJSON(lab, n),
		"/etc/lab/facts.env":  FactsEnvFile(lab, n),
	}
	if n.IP6().IsValid() {
		files["/etc/gai.conf"] = gaiConf
	}
	if len(n.Interfaces) > 0 {
		net := lab.Network(n.Interfaces[0].Network)
		files["/etc/resolv.conf"] = fmt.Sprintf("# lab: the DNS of bridge %s\nnameserver %s\nsearch %s\noptions ndots:1 timeout:1\n", net.Bridge, net.Gateway, net.Domain)
	}
	script = unmaskScript(n.Spec.Unmask)
	if !n.Spec.SSHEnabled() {
		return files, script, nil
	}
	if sshPub == "" {
		return nil, "", fmt.Errorf("node %s: ssh: true, but the lab has no SSH key", n.Name)
	}
	files["/root/.ssh/authorized_keys"] = sshPub
	port := n.Spec.SSHPortOf()
	files["/etc/ssh/sshd_config.d/lab.conf"] = fmt.Sprintf("# lab: ssh_port of role %s\nPort %d\n", n.Role, port)
	script += fmt.Sprintf(`if [ -x /usr/sbin/sshd ] && [ ! -f /etc/lab/ssh-host-keys ]; then
  rm -f /etc/ssh/ssh_host_*
  ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key
  touch /etc/lab/ssh-host-keys
  systemctl restart ssh 2>/dev/null || true
fi
if [ -x /usr/sbin/sshd ] && ! ss -Hltn 'sport = :%d' | grep -q .; then
  systemctl restart ssh 2>/dev/null || true
fi
chmod 700 /root/.ssh
`, port)
	return files, script, nil
}

// unmaskScript unmasks and starts the units a role lists in unmask: once
// (a unit is masked only until its node first runs this), before any step.
func unmaskScript(units []string) string {
	if len(units) == 0 {
		return ""
	}
	q := make([]string, len(units))
	for i, u := range units {
		q[i] = shell.Quote(u)
	}
	return fmt.Sprintf(`m=""
for u in %s; do
  [ "$(readlink "/etc/systemd/system/$u")" = /dev/null ] && m="$m $u"
done
if [ -n "$m" ]; then
  systemctl unmask -q $m && systemctl daemon-reload
  for u in $m; do
    systemctl start "$u" || { echo "unmask: $u does not start (systemctl status $u says why)" >&2; exit 1; }
  done
fi
`, strings.Join(q, " "))
}

// gaiConf makes getaddrinfo give IPv4 first for a name with both (an
// alias, which only DNS serves, has A and AAAA): software that takes the
// first address, or stops at the first that answers, keeps working as on
// IPv4; IPv6 is there for whoever asks for it. glibc's table is replaced
// whole by any precedence line, so this is its default with IPv4 raised.
const gaiConf = `# lab: IPv4 first for names with both families; IPv6 when asked for (curl -6, AF_INET6).
precedence ::1/128       50
precedence ::/0          40
precedence 2002::/16     30
precedence ::/96         20
precedence ::ffff:0:0/96 100
`

// HostFiles are the files lab keeps for the lab on the host, in .lab:
// inventories for Ansible and an OpenSSH config. key is the lab's private
// key ("" when it has none).
func HostFiles(lab *topology.Lab, key string) map[string]string {
	return map[string]string{
		"inventory.ini": InventoryINI(lab, key),
		"inventory.yml": InventoryYAML(lab, key),
		"ssh-config":    SSHConfig(lab, key),
	}
}

// WriteFilesScript is a shell script that writes each file atomically in a
// node (beside it, then renamed), touching only files whose content
// changed, then sets the hostname.
func WriteFilesScript(files map[string]string) string {
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var b strings.Builder
	b.WriteString("set -e\n")
	for i, p := range paths {
		content := files[p]
		delim := fmt.Sprintf("LAB_EOF_%d", i)
		for strings.Contains(content, delim) {
			delim += "_"
		}
		q := shell.Quote(p)
		fmt.Fprintf(&b, "mkdir -p \"$(dirname %[1]s)\"\ncat > %[1]s.lab-new <<'%[2]s'\n%[3]s%[2]s\n", q, delim, ensureNL(content))
		fmt.Fprintf(&b, "if cmp -s %[1]s.lab-new %[1]s; then rm -f %[1]s.lab-new; else chmod 0644 %[1]s.lab-new; mv -f %[1]s.lab-new %[1]s; fi\n", q)
	}
	b.WriteString("[ -x /usr/bin/hostname ] && hostname -F /etc/hostname 2>/dev/null || true\n")
	return b.String()
}

func ensureNL(s string) string {
	if s == "" || strings.HasSuffix(s, "\n") {
		return s
	}
	return s + "\n"
}
