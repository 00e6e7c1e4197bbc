package topology

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/labctl/lab/internal/graph"
)

// Limits that follow from Linux and from the address plan.
const (
	// MaxNameLen keeps bridge names (lab-NAME-N) within the 15 characters
	// of a Linux interface name.
	MaxNameLen     = 9
	MaxNetworks    = 10
	MaxRoles       = 12
	MaxRoleNameLen = 24
	MinPrefixBits  = 16
	MaxPrefixBits  = 27
	// MaxMemory is the largest memory a node may be given.
	MaxMemory = int64(4) << 40
	// MinBootTimeout and MinHealthTimeout are the least time that can work.
	MinBootTimeout   = 5 * time.Second
	MinHealthTimeout = time.Second
	MaxLabelLen      = 63 // a DNS label
)

// Suites are the Debian suites images can be built from.
var Suites = []string{"buster", "bullseye", "bookworm", "trixie", "forky", "sid", "oldstable", "stable", "testing", "unstable"}

var (
	nameRe    = regexp.MustCompile(`^[a-z]([a-z0-9-]*[a-z0-9])?$`)
	roleRe    = regexp.MustCompile(`^[a-z]([a-z0-9-]*[a-z])?$`)
	imageRe   = regexp.MustCompile(`^debian/[a-z]+$`)
	pkgRe     = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
	envKeyRe  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	domainRe  = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	modeRe    = regexp.MustCompile(`^0?[0-7]{3,4}$`)
	ownerRe   = regexp.MustCompile(`^[a-z_][a-z0-9_-]*(:[a-z_][a-z0-9_-]*)?$`)
	accelVals = []string{"", "kvm", "tcg"}
)

// ValidName tells whether s is a valid lab name.
func ValidName(s string) bool { return nameRe.MatchString(s) && len(s) <= MaxNameLen }

func (t *Topology) validate(errs *Errors) {
	at := func(path, format string, args ...any) {
		errs.add(path, t.Line(path), fmt.Sprintf(format, args...))
	}
	known := t.providers
	checkProvider := func(at reporter, path, p string) {
		if known != nil && !slices.Contains(known, p) {
			at(path, "unknown provider %q (known: %s)", Cut(p), strings.Join(known, ", "))
		}
	}

	switch {
	case t.Name == "":
		at("name", "required: a short lab name (lowercase letters, digits, '-')")
	case !nameRe.MatchString(t.Name):
		at("name", "%q: use lowercase letters, digits and '-', starting with a letter", t.Name)
	case len(t.Name) > MaxNameLen:
		at("name", "%q is %d characters; at most %d fit a Linux bridge name (lab-NAME-N, 15 characters)", t.Name, len(t.Name), MaxNameLen)
	}

	d := t.Defaults
	checkProvider(at, "defaults.provider", d.Provider)
	checkImage(at, "defaults.image", d.Image)
	checkCPUs(at, "defaults.cpus", d.CPUs)
	checkMemory(at, "defaults.memory", d.Memory)
	checkPackages(at, "defaults.packages", d.Packages)
	checkDuration(at, "defaults.boot_timeout", d.BootTimeout, MinBootTimeout)
	checkDuration(at, "defaults.health_timeout", d.HealthTimeout, MinHealthTimeout)
	checkAccel(at, "defaults.accel", d.Accel)

	t.validateNetworks(at)
	t.validateRoles(at, checkProvider)
	t.validateTests(at)
	t.validateAliases(at)
	t.validateLXD(at)
}

type reporter func(path, format string, args ...any)

func checkImage(at reporter, path, img string) {
	if !imageRe.MatchString(img) {
		at(path, "%q: want debian/SUITE, such as debian/bookworm", Cut(img))
		return
	}
	if suite := strings.TrimPrefix(img, "debian/"); !slices.Contains(Suites, suite) {
		at(path, "%q: unknown Debian suite %q (known: %s)", img, suite, strings.Join(Suites, ", "))
	}
}

func checkCPUs(at reporter, path string, n int) {
	if n < 1 || n > 256 {
		at(path, "%d: want 1 to 256", n)
	}
}

func checkMemory(at reporter, path, m string) {
	b, err := ParseSize(m)
	if err != nil {
		at(path, "%v", err)
		return
	}
	if b < 64<<20 {
		at(path, "%q is less than 64M, too little for a node with systemd", m)
	}
}

func checkPackages(at reporter, path string, pkgs []string) {
	seen := map[string]bool{}
	for i, p := range pkgs {
		ip := fmt.Sprintf("%s[%d]", path, i)
		if !pkgRe.MatchString(p) {
			at(ip, "%q is not a Debian package name", p)
		}
		if seen[p] {
			at(ip, "%q is listed twice", p)
		}
		seen[p] = true
	}
}

func checkDuration(at reporter, path, s string, min time.Duration) {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		at(path, "%q: want a duration such as 90s or 2m", Cut(s))
		return
	}
	if d < min {
		at(path, "%q is too short: at least %s", s, min)
	}
}

func checkAccel(at reporter, path, a string) {
	for _, v := range accelVals {
		if a == v {
			return
		}
	}
	at(path, "%q: want kvm or tcg", a)
}

// ParseSize reads sizes such as 512M, 1G, 1.5G, 256MiB or 1073741824.
func ParseSize(s string) (int64, error) {
	in := strings.TrimSpace(s)
	u := strings.ToUpper(in)
	u = strings.TrimSuffix(strings.TrimSuffix(u, "B"), "I")
	mult := int64(1)
	if u != "" {
		switch u[len(u)-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult != 1 {
			u = u[:len(u)-1]
		}
	}
	f, err := strconv.ParseFloat(u, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 {
		return 0, fmt.Errorf("%q: want a size such as 512M or 2G", Cut(s))
	}
	if f*float64(mult) > float64(MaxMemory) {
		return 0, fmt.Errorf("%q: more than %dT", Cut(s), MaxMemory>>40)
	}
	return int64(f * float64(mult)), nil
}

func (t *Topology) validateNetworks(at reporter) {
	if len(t.Networks) > MaxNetworks {
		at("networks", "%d networks; at most %d", len(t.Networks), MaxNetworks)
	}
	names := map[string]bool{}
	var prefixes []netip.Prefix
	var prefixPaths []string
	var prefixes6 []netip.Prefix
	var prefixPaths6 []string
	for i, n := range t.Networks {
		p := fmt.Sprintf("networks[%d]", i)
		switch {
		case n.Name == "":
			at(p+".name", "required")
		case !nameRe.MatchString(n.Name):
			at(p+".name", "%q: use lowercase letters, digits and '-'", n.Name)
		case names[n.Name]:
			at(p+".name", "network %q is defined twice", n.Name)
		}
		names[n.Name] = true
		if n.Subnet != "" {
			pfx, err := ParseSubnet(n.Subnet)
			if err != nil {
				at(p+".subnet", "%v", err)
			} else {
				for j, other := range prefixes {
					if other.Overlaps(pfx) {
						at(p+".subnet", "%s overlaps %s (%s)", pfx, other, prefixPaths[j])
					}
				}
				prefixes = append(prefixes, pfx)
				prefixPaths = append(prefixPaths, p+".subnet")
			}
		}
		if n.Subnet6 != "" {
			pfx, err := ParseSubnet6(n.Subnet6)
			switch {
			case err != nil:
				at(p+".subnet6", "%v", err)
			case !n.HasIPv6():
				at(p+".subnet6", "the network has ipv6: false")
			default:
				for j, other := range prefixes6 {
					if other == pfx {
						at(p+".subnet6", "%s is also %s", pfx, prefixPaths6[j])
					}
				}
				prefixes6 = append(prefixes6, pfx)
				prefixPaths6 = append(prefixPaths6, p+".subnet6")
			}
		}
		if n.Domain != "" && (!domainRe.MatchString(n.Domain) || len(n.Domain) > 200) {
			at(p+".domain", "%q is not a DNS domain", Cut(n.Domain))
		} else if l := longLabel(n.Domain); l != "" {
			at(p+".domain", "label %q is %d characters; a DNS label has at most %d", Cut(l), len(l), MaxLabelLen)
		}
	}
}

// ParseSubnet checks that s is a private IPv4 subnet that fits the address
// plan. Only private ranges are accepted: a lab bridge on a public range would
// capture traffic meant for real machines.
func ParseSubnet(s string) (netip.Prefix, error) {
	pfx, err := netip.ParsePrefix(s)
	if err != nil {
		return pfx, fmt.Errorf("%q: want an IPv4 subnet such as 10.80.0.0/24", s)
	}
	if !pfx.Addr().Is4() {
		return pfx, fmt.Errorf("%q: only IPv4 subnets are supported", s)
	}
	if pfx.Masked() != pfx {
		return pfx, fmt.Errorf("%q has host bits set; did you mean %s?", s, pfx.Masked())
	}
	if !pfx.Addr().IsPrivate() {
		return pfx, fmt.Errorf("%q is not a private range (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16)", s)
	}
	if pfx.Bits() < MinPrefixBits || pfx.Bits() > MaxPrefixBits {
		return pfx, fmt.Errorf("%q: want a prefix length from /%d to /%d", s, MinPrefixBits, MaxPrefixBits)
	}
	return pfx, nil
}

// ParseSubnet6 checks that s is an IPv6 unique local /64 (fc00::/7): lab
// nodes get addresses in it beside their IPv4 ones, and nothing routes it.
func ParseSubnet6(s string) (netip.Prefix, error) {
	pfx, err := netip.ParsePrefix(s)
	switch {
	case err != nil || !pfx.Addr().Is6() || pfx.Addr().Is4In6():
		return pfx, fmt.Errorf("%q: want an IPv6 unique local /64 such as fd12:3456:789a:1::/64", Cut(s))
	case pfx.Bits() != 64:
		return pfx, fmt.Errorf("%q: want a /64 (nodes' addresses follow their IPv4 host numbers)", s)
	case pfx.Masked() != pfx:
		return pfx, fmt.Errorf("%q has host bits set; did you mean %s?", s, pfx.Masked())
	case !pfx.Addr().IsPrivate():
		return pfx, fmt.Errorf("%q is not a unique local range (fc00::/7)", s)
	}
	return pfx, nil
}

func (t *Topology) validateRoles(at reporter, checkProvider func(reporter, string, string)) {
	if len(t.Nodes) == 0 {
		at("nodes", "required: at least one role")
		return
	}
	if len(t.Nodes) > MaxRoles {
		at("nodes", "%d roles; at most %d (each role owns a block of addresses)", len(t.Nodes), MaxRoles)
	}
	roles := t.validateRoleNames(at)
	hostPorts := map[string]string{}
	floating := map[netip.Addr]string{}
	for i := range t.Nodes {
		r := &t.Nodes[i]
		rp := func(f string) string { return rolePath(i, f) }
		if r.Count != nil && *r.Count < 0 {
			at(rp("count"), "%d: a count cannot be below 0", *r.Count)
		} else if r.First != nil && *r.First < 1 {
			at(rp("first"), "%d: node numbers start at 1", *r.First)
		} else if max := t.blockSize(r); r.LastOf() > max && max > 0 {
			if r.First != nil {
				at(rp("first"), "nodes %s%d…%s%d do not fit: each role has a block of %d addresses in this subnet, so its node numbers end at %d; use a larger subnet (/%d holds them)", r.Role, r.FirstOf(), r.Role, r.LastOf(), max, max, prefixFor(r.LastOf()))
			} else {
				at(rp("count"), "%d nodes do not fit: each role has a block of %d addresses in this subnet; use a larger subnet (/%d holds them)", r.CountOf(), max, prefixFor(r.LastOf()))
			}
		}
		checkProvider(at, rp("provider"), r.Provider)
		checkImage(at, rp("image"), r.Image)
		checkCPUs(at, rp("cpus"), r.CPUs)
		checkMemory(at, rp("memory"), r.Memory)
		checkAccel(at, rp("accel"), r.Accel)
		checkPackages(at, rp("packages"), r.Packages)
		t.validateRoleNetworks(at, rp("networks"), r)
		validateAfter(at, rp("after"), r, roles)
		for j, s := range r.Provision {
			t.validateStep(at, fmt.Sprintf("%s[%d]", rp("provision"), j), s, r)
		}
		for j, c := range r.Health {
			validateCheck(at, fmt.Sprintf("%s[%d]", rp("health"), j), c)
		}
		validatePorts(at, rp("ports"), r, hostPorts)
		t.validateFirewall(at, rp("firewall"), r)
		t.validateFloating(at, rp("floating"), r, floating)
		validateUnmask(at, rp("unmask"), r.Unmask)
		switch {
		case r.SSHPort == 0:
		case r.SSHPort < 1 || r.SSHPort > 65535:
			at(rp("ssh_port"), "%d: want a port from 1 to 65535", r.SSHPort)
		case !r.SSHEnabled():
			at(rp("ssh_port"), "needs ssh: true (it moves the sshd that ssh: true gives)")
		}
	}
	if cyc := t.afterCycle(); cyc != nil {
		i := roles[cyc[0]]
		at(rolePath(i, "after"), "cycle: %s", strings.Join(cyc, " → "))
	}
}

// validateRoleNames checks each role's name and returns name → index.
func (t *Topology) validateRoleNames(at reporter) map[string]int {
	roles := map[string]int{}
	for i, r := range t.Nodes {
		p := rolePath(i, "role")
		switch {
		case r.Role == "":
			at(p, "required: the role's name, such as pg or nginx")
			continue
		case !roleRe.MatchString(r.Role):
			at(p, "%q: use lowercase letters, digits and '-', starting and ending with a letter (nodes are named ROLE1, ROLE2, …)", Cut(r.Role))
		case len(r.Role) > MaxRoleNameLen:
			at(p, "%q is longer than %d characters", Cut(r.Role), MaxRoleNameLen)
		}
		if j, dup := roles[r.Role]; dup {
			at(p, "role %q is already defined at nodes[%d]", r.Role, j)
			continue
		}
		roles[r.Role] = i
	}
	return roles
}

func (t *Topology) validateRoleNetworks(at reporter, path string, r *Role) {
	netNames := map[string]bool{}
	for _, n := range t.Networks {
		netNames[n.Name] = true
	}
	seen := map[string]bool{}
	for j, n := range r.Networks {
		np := fmt.Sprintf("%s[%d]", path, j)
		switch {
		case !netNames[n]:
			at(np, "unknown network %q", Cut(n))
		case seen[n]:
			at(np, "network %q is listed twice (a node has one interface per network)", n)
		}
		seen[n] = true
	}
}

func validateAfter(at reporter, path string, r *Role, roles map[string]int) {
	seen := map[string]bool{}
	for j, a := range r.After {
		ap := fmt.Sprintf("%s[%d]", path, j)
		switch _, ok := roles[a]; {
		case !ok:
			at(ap, "unknown role %q%s", Cut(a), didYouMean(a, keys(roles)))
		case a == r.Role:
			at(ap, "a role cannot come after itself")
		case seen[a]:
			at(ap, "%q is listed twice", a)
		}
		seen[a] = true
	}
}

// validatePorts checks a role's forwards; hostPorts holds the listen
// addresses taken so far (address:port → field path).
func validatePorts(at reporter, path string, r *Role, hostPorts map[string]string) {
	for j, pf := range r.Ports {
		pp := fmt.Sprintf("%s[%d]", path, j)
		if pf.Host < 1 || pf.Host > 65535 || pf.Port < 1 || pf.Port > 65535 {
			at(pp, "want host and port from 1 to 65535 (such as 8080:80)")
			continue
		}
		if ip, err := netip.ParseAddr(pf.Address); err != nil || !ip.IsLoopback() {
			at(pp+".address", "%q: forwards listen on loopback only, such as 127.0.0.1", Cut(pf.Address))
		}
		if pf.Node != "" && (!strings.HasPrefix(pf.Node, r.Role) || !r.hasIndex(strings.TrimPrefix(pf.Node, r.Role))) {
			at(pp+".node", "%q is not a node of role %s (%s%d…%s%d)", Cut(pf.Node), r.Role, r.Role, r.FirstOf(), r.Role, r.LastOf())
		}
		if r.CountOf() == 0 {
			at(pp, "role %s has no nodes to forward to", r.Role)
		}
		key := net.JoinHostPort(pf.Address, strconv.Itoa(pf.Host))
		if other, dup := hostPorts[key]; dup {
			at(pp, "host port %d is already forwarded by %s (on %s)", pf.Host, other, pf.Address)
		}
		hostPorts[key] = pp
	}
}

func longLabel(domain string) string {
	for _, l := range strings.Split(domain, ".") {
		if len(l) > MaxLabelLen {
			return l
		}
	}
	return ""
}

func keys(m map[string]int) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func didYouMean(s string, known []string) string {
	if m := suggest(s, known); m != "" {
		return fmt.Sprintf(" (did you mean %q?)", m)
	}
	if len(known) > 0 {
		return fmt.Sprintf(" (roles: %s)", strings.Join(known, ", "))
	}
	return ""
}

// ParsePort reads "8080:80" or "127.0.0.1:8080:80".
func ParsePort(s string) (Port, error) {
	parts := strings.Split(s, ":")
	pf := Port{Address: "127.0.0.1"}
	switch len(parts) {
	case 2:
	case 3:
		ip, err := netip.ParseAddr(parts[0])
		if err != nil || !ip.IsLoopback() {
			return pf, fmt.Errorf("%q: the host address must be a loopback address such as 127.0.0.1", s)
		}
		pf.Address = parts[0]
		parts = parts[1:]
	default:
		return pf, fmt.Errorf("%q: want HOSTPORT:NODEPORT such as 8080:80", s)
	}
	hp, err1 := strconv.Atoi(parts[0])
	np, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil || hp < 1 || hp > 65535 || np < 1 || np > 65535 {
		return pf, fmt.Errorf("%q: want HOSTPORT:NODEPORT with ports from 1 to 65535", s)
	}
	pf.Host, pf.Port = hp, np
	return pf, nil
}

// afterCycle returns a cycle in the roles' after graph, or nil. A role
// after itself is reported on its own.
func (t *Topology) afterCycle() []string {
	var roles []string
	for _, r := range t.Nodes {
		roles = append(roles, r.Role)
	}
	return graph.Cycle(roles, func(name string) []string {
		var deps []string
		if r := t.RoleByName(name); r != nil {
			for _, a := range r.After {
				if a != name {
					deps = append(deps, a)
				}
			}
		}
		return deps
	})
}
