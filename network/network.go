// Package network makes a lab's networks on the host: a Linux bridge per
// network with the subnet's .1 as its address, an nftables table that drops
// every forwarded packet between lab bridges and any other interface (no
// NAT, nothing leaves the machine), and a dnsmasq bound only to the bridge
// that answers for the lab's names and forwards nothing.
//
// It drives iproute2, nft and dnsmasq as commands: they are what an
// administrator reads and debugs, and what ../shared/ENVIRONMENT.md measured.
package network

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/labctl/lab/internal/fsx"
	"github.com/labctl/lab/internal/spawn"
)

// RunDir holds dnsmasq's configuration, hosts file and PID file, one set per
// bridge, readable by dnsmasq after it drops privileges.
var RunDir = "/run/lab"

// Net is one network to make. Subnet6 and Gateway6 are its IPv6 /64 and
// the bridge's address in it (invalid: the network is IPv4 only).
type Net struct {
	Bridge   string
	Subnet   netip.Prefix
	Gateway  netip.Addr // the bridge's address
	Subnet6  netip.Prefix
	Gateway6 netip.Addr
	Domain   string
}

// Manager makes and removes networks. Owner identifies the lab (its state
// folder): a bridge made for another lab of the same name is never touched.
type Manager struct {
	Owner string
}

func run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

func (m *Manager) ownerFile(br string) string { return filepath.Join(RunDir, br+".owner") }

// LinkExists tells whether an interface exists.
func LinkExists(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/class/net", name))
	return err == nil
}

// CheckFree returns an error when subnet overlaps a route or an address of
// the host that is not on bridge itself (another lab, a VPN, the LAN).
func CheckFree(ctx context.Context, subnet netip.Prefix, bridge string) error {
	fam := "-4"
	if subnet.Addr().Is6() {
		fam = "-6"
	}
	out, err := run(ctx, "ip", "-j", fam, "route", "show", "table", "all")
	if err != nil {
		return err
	}
	var routes []struct {
		Dst  string `json:"dst"`
		Dev  string `json:"dev"`
		Type string `json:"type"`
	}
	if err := json.Unmarshal([]byte(out), &routes); err != nil {
		return fmt.Errorf("ip route: %w", err)
	}
	for _, r := range routes {
		if r.Dev == bridge || r.Dst == "" || r.Dst == "default" {
			continue
		}
		p, err := netip.ParsePrefix(r.Dst)
		if err != nil {
			a, err2 := netip.ParseAddr(r.Dst)
			if err2 != nil {
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Bits() == 0 || p.Addr().IsLinkLocalUnicast() || p.Addr().IsMulticast() {
			continue
		}
		if p.Overlaps(subnet) {
			return fmt.Errorf("subnet %s overlaps the host's route to %s on %s", subnet, p, r.Dev)
		}
	}
	return nil
}

// CheckFree is the package's CheckFree, for callers that hold a Manager.
func (m *Manager) CheckFree(ctx context.Context, subnet netip.Prefix, bridge string) error {
	return CheckFree(ctx, subnet, bridge)
}

// Preflight says why the network cannot be made, without changing
// anything: its bridge belongs to another lab of the same name, or its
// subnet overlaps a route of the host (another lab, a VPN, the LAN).
func (m *Manager) Preflight(ctx context.Context, lab string, n Net) error {
	if owner, err := os.ReadFile(m.ownerFile(n.Bridge)); err == nil && strings.TrimSpace(string(owner)) != m.Owner {
		return fmt.Errorf("network %s: bridge %s belongs to another lab named %q (%s); destroy it there or rename this lab", n.Bridge, n.Bridge, lab, strings.TrimSpace(string(owner)))
	}
	if !LinkExists(n.Bridge) {
		for _, s := range []netip.Prefix{n.Subnet, n.Subnet6} {
			if !s.IsValid() {
				continue
			}
			if err := CheckFree(ctx, s, n.Bridge); err != nil {
				return fmt.Errorf("network %s: %w", n.Bridge, err)
			}
		}
	}
	return nil
}

// Ensure makes the network if it is missing and brings every part of it to
// what it should be. It is safe to call again after a half-finished run.
func (m *Manager) Ensure(ctx context.Context, lab string, n Net) error {
	if err := os.MkdirAll(RunDir, 0o755); err != nil {
		return err
	}
	if err := m.Preflight(ctx, lab, n); err != nil {
		return err
	}
	if err := os.WriteFile(m.ownerFile(n.Bridge), []byte(m.Owner+"\n"), 0o644); err != nil {
		return err
	}
	// Drop rules first, so nothing can be forwarded even for a moment.
	if err := m.ensureFirewall(ctx, lab, n.Bridge); err != nil {
		return fmt.Errorf("network %s: nftables: %w", n.Bridge, err)
	}
	if !LinkExists(n.Bridge) {
		if _, err := run(ctx, "ip", "link", "add", n.Bridge, "type", "bridge"); err != nil && !LinkExists(n.Bridge) {
			return fmt.Errorf("network %s: %w", n.Bridge, err)
		}
	}
	if err := fixMAC(ctx, n.Bridge); err != nil {
		return fmt.Errorf("network %s: %w", n.Bridge, err)
	}
	if err := ensureIPv6(ctx, n); err != nil {
		return fmt.Errorf("network %s: %w", n.Bridge, err)
	}
	addr := netip.PrefixFrom(n.Gateway, n.Subnet.Bits()).String()
	if out, _ := run(ctx, "ip", "-4", "-o", "addr", "show", "dev", n.Bridge); !strings.Contains(out, " "+addr+" ") {
		if _, err := run(ctx, "ip", "addr", "replace", addr, "dev", n.Bridge); err != nil {
			return fmt.Errorf("network %s: %w", n.Bridge, err)
		}
	}
	if _, err := run(ctx, "ip", "link", "set", n.Bridge, "up"); err != nil {
		return fmt.Errorf("network %s: %w", n.Bridge, err)
	}
	if err := m.ensureDNS(ctx, n); err != nil {
		return fmt.Errorf("network %s: dnsmasq: %w", n.Bridge, err)
	}
	return nil
}

// ensureIPv6 gives a dual-stack network's bridge its ::1 (no duplicate
// address detection: the address is the lab's, and dnsmasq binds it at
// once) and takes no router advertisements; an IPv4-only network's bridge
// has IPv6 off.
func ensureIPv6(ctx context.Context, n Net) error {
	conf := func(key, v string) error {
		return os.WriteFile(filepath.Join("/proc/sys/net/ipv6/conf", n.Bridge, key), []byte(v), 0o644)
	}
	if !n.Subnet6.IsValid() {
		_ = conf("disable_ipv6", "1")
		return nil
	}
	for _, kv := range [][2]string{{"accept_ra", "0"}, {"autoconf", "0"}, {"disable_ipv6", "0"}} {
		if err := conf(kv[0], kv[1]); err != nil {
			return fmt.Errorf("IPv6: %w", err)
		}
	}
	addr := netip.PrefixFrom(n.Gateway6, n.Subnet6.Bits()).String()
	if out, _ := run(ctx, "ip", "-6", "-o", "addr", "show", "dev", n.Bridge); !strings.Contains(out, " "+addr+" ") {
		if _, err := run(ctx, "ip", "-6", "addr", "replace", addr, "dev", n.Bridge, "nodad"); err != nil {
			return err
		}
	}
	return nil
}

// Table is the nftables table of a lab.
func Table(lab string) string { return "lab_" + strings.ReplaceAll(lab, "-", "_") }

func (m *Manager) ensureFirewall(ctx context.Context, lab, bridge string) error {
	t := Table(lab)
	out, _ := run(ctx, "nft", "list", "chain", "inet", t, "forward")
	if strings.Contains(out, `iifname "`+bridge+`"`) {
		return nil
	}
	script := fmt.Sprintf(`table inet %[1]s {
	chain forward {
		type filter hook forward priority filter - 10; policy accept;
	}
}
add rule inet %[1]s forward iifname "%[2]s" oifname != "%[2]s" counter drop comment "lab: nothing leaves a lab network"
add rule inet %[1]s forward oifname "%[2]s" iifname != "%[2]s" counter drop comment "lab: nothing enters a lab network"
`, t, bridge)
	return nftScript(ctx, script)
}

func (m *Manager) paths(br string) (conf, hosts, pid string) {
	return filepath.Join(RunDir, br+".conf"), filepath.Join(RunDir, br+".hosts"), filepath.Join(RunDir, br+".pid")
}

func (m *Manager) ensureDNS(ctx context.Context, n Net) error {
	conf, hosts, pidf := m.paths(n.Bridge)
	cfg := fmt.Sprintf(`# lab: DNS for bridge %[1]s only; answers lab names, forwards nothing.
interface=%[1]s
listen-address=%[2]s%[6]s
bind-interfaces
except-interface=lo
no-resolv
no-hosts
no-poll
domain=%[3]s
local=/%[3]s/
expand-hosts
addn-hosts=%[4]s
pid-file=%[5]s
`, n.Bridge, n.Gateway, n.Domain, hosts, pidf, listen6(n))
	if _, err := os.Stat(hosts); err != nil {
		if err := os.WriteFile(hosts, nil, 0o644); err != nil {
			return err
		}
	}
	old, _ := os.ReadFile(conf)
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		return err
	}
	if pid := dnsmasqPID(pidf, conf); pid > 0 {
		if string(old) == cfg {
			return nil
		}
		stopPID(pid)
	}
	var out string
	err := spawn.Daemon(func() (err error) {
		out, err = run(ctx, "dnsmasq", "--conf-file="+conf)
		return err
	})
	if err != nil {
		return fmt.Errorf("%w %s", err, out)
	}
	// dnsmasq writes its PID file after it forks; wait for it briefly.
	for i := 0; i < 50 && dnsmasqPID(pidf, conf) == 0; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if dnsmasqPID(pidf, conf) == 0 {
		return errors.New("started but wrote no PID file")
	}
	return nil
}

func listen6(n Net) string {
	if !n.Gateway6.IsValid() {
		return ""
	}
	return "\nlisten-address=" + n.Gateway6.String()
}

// dnsmasqPID returns the PID in pidf when that process is our dnsmasq for
// conf, else 0: a stale PID file never makes us signal someone else.
func dnsmasqPID(pidf, conf string) int {
	b, err := os.ReadFile(pidf)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !spawn.Alive(pid) || !bytes.Contains(cmdline, []byte("dnsmasq")) || !bytes.Contains(cmdline, []byte(conf)) {
		return 0
	}
	return pid
}

func stopPID(pid int) {
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for i := 0; i < 100; i++ {
		if !spawn.Alive(pid) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// SetHosts replaces the names dnsmasq serves on a bridge ("IP name" lines;
// dnsmasq adds the domain) and makes it reload them.
func (m *Manager) SetHosts(bridge string, lines string) error {
	conf, hosts, pidf := m.paths(bridge)
	old, _ := os.ReadFile(hosts)
	if string(old) == lines {
		return nil
	}
	if err := fsx.WriteAtomic(hosts, []byte(lines), 0o644); err != nil {
		return err
	}
	if pid := dnsmasqPID(pidf, conf); pid > 0 {
		return syscall.Kill(pid, syscall.SIGHUP)
	}
	return nil
}

// Remove takes a network down: dnsmasq, bridge, firewall rules, files. It
// succeeds when parts are already gone, and leaves a bridge that belongs to
// another lab alone.
func (m *Manager) Remove(ctx context.Context, lab, bridge string) error {
	if owner, err := os.ReadFile(m.ownerFile(bridge)); err == nil && strings.TrimSpace(string(owner)) != m.Owner {
		return nil // another lab's (this lab's up was refused before making it): not ours to remove
	}
	conf, hosts, pidf := m.paths(bridge)
	if pid := dnsmasqPID(pidf, conf); pid > 0 {
		stopPID(pid)
	}
	var errs []error
	if LinkExists(bridge) {
		if _, err := run(ctx, "ip", "link", "del", bridge); err != nil {
			errs = append(errs, err)
		}
	}
	if err := removeRules(ctx, lab, bridge); err != nil {
		errs = append(errs, err)
	}
	for _, f := range []string{conf, hosts, pidf, m.ownerFile(bridge)} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeRules deletes a bridge's rules, and the lab's table once it is empty.
func removeRules(ctx context.Context, lab, bridge string) error {
	t := Table(lab)
	out, err := run(ctx, "nft", "-a", "list", "chain", "inet", t, "forward")
	if err != nil {
		return nil // no table: nothing to remove
	}
	remaining := 0
	var b strings.Builder
	for _, line := range strings.Split(out, "\n") {
		i := strings.Index(line, "# handle ")
		if i < 0 || !strings.Contains(line, "drop") {
			continue
		}
		if strings.Contains(line, `"`+bridge+`"`) {
			h := strings.TrimSpace(line[i+len("# handle "):])
			fmt.Fprintf(&b, "delete rule inet %s forward handle %s\n", t, h)
			continue
		}
		remaining++
	}
	if remaining == 0 {
		b.Reset() // the table goes with its rules
		fmt.Fprintf(&b, "delete table inet %s\n", t)
	}
	if b.Len() > 0 {
		return nftScript(ctx, b.String())
	}
	return nil
}

// Leftovers lists what of a lab's networks still exists on the host: for
// leak checks after destroy.
func Leftovers(ctx context.Context, lab string, bridges []string) []string {
	var out []string
	for _, br := range bridges {
		if LinkExists(br) {
			out = append(out, "bridge "+br)
		}
		conf, _, pidf := (&Manager{}).paths(br)
		if pid := dnsmasqPID(pidf, conf); pid > 0 {
			out = append(out, fmt.Sprintf("dnsmasq pid %d for %s", pid, br))
		}
		for _, f := range []string{conf, pidf} {
			if _, err := os.Stat(f); err == nil {
				out = append(out, "file "+f)
			}
		}
	}
	if o, err := run(ctx, "nft", "list", "table", "inet", Table(lab)); err == nil && o != "" {
		out = append(out, "nftables table inet "+Table(lab))
	}
	return out
}
