// Package topology owns the lab file format: decoding with field paths and
// lines, defaults, validation, and expansion of roles into nodes with fixed
// names and addresses. It never touches the machine beyond reading the files
// the topology names.
package topology

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/labctl/lab/internal/fsx"

	"gopkg.in/yaml.v3"
)

// Topology is a lab file as written, with defaults applied by Load.
type Topology struct {
	Name     string    `yaml:"name"`
	Defaults Defaults  `yaml:"defaults"`
	Networks []Network `yaml:"networks"`
	Nodes    []Role    `yaml:"nodes"`
	Tests    []Test    `yaml:"tests"`
	// Aliases are extra DNS names: alias → node, served by the lab's DNS on
	// the networks that node is on (not in /etc/hosts, so a change reaches
	// running nodes at once).
	Aliases map[string]string `yaml:"aliases"`
	// LXD says where the lab's lxd nodes live (provider lxd).
	LXD LXD `yaml:"lxd"`

	// File is the path the topology was read from; Dir is its folder, which
	// script and file paths are relative to.
	File string `yaml:"-"`
	Dir  string `yaml:"-"`

	lines     map[string]int
	hostPaths []string
	providers []string
	missingOK bool
}

// Defaults apply to every role that does not say otherwise.
type Defaults struct {
	Provider      string   `yaml:"provider"`
	Image         string   `yaml:"image"`
	CPUs          int      `yaml:"cpus"`
	Memory        string   `yaml:"memory"`
	Packages      []string `yaml:"packages"`
	BootTimeout   string   `yaml:"boot_timeout"`
	HealthTimeout string   `yaml:"health_timeout"`
	Accel         string   `yaml:"accel"`
	SSH           bool     `yaml:"ssh"`
	Privileged    *bool    `yaml:"privileged"`
	Nesting       bool     `yaml:"nesting"`
}

// Network is one lab network: a bridge with a subnet and a DNS domain,
// dual stack: beside the IPv4 subnet, an IPv6 ULA /64 (Subnet6, or one
// fixed from the lab and network names) unless IPv6 is false.
type Network struct {
	Name    string `yaml:"name"`
	Subnet  string `yaml:"subnet"`
	Subnet6 string `yaml:"subnet6"`
	IPv6    *bool  `yaml:"ipv6"`
	Domain  string `yaml:"domain"`
}

// HasIPv6 tells whether the network is dual stack (the default).
func (n *Network) HasIPv6() bool { return n.IPv6 == nil || *n.IPv6 }

// Role is a group of identical nodes: role pg with count 2 gives pg1 and pg2.
type Role struct {
	Role      string   `yaml:"role"`
	Count     *int     `yaml:"count"`
	First     *int     `yaml:"first"` // the index of the role's first node (default 1)
	Provider  string   `yaml:"provider"`
	Image     string   `yaml:"image"`
	CPUs      int      `yaml:"cpus"`
	Memory    string   `yaml:"memory"`
	Accel     string   `yaml:"accel"`
	Packages  []string `yaml:"packages"`
	Networks  []string `yaml:"networks"`
	After     []string `yaml:"after"`
	Provision []Step   `yaml:"provision"`
	Health    []Check  `yaml:"health"`
	Ports     []Port   `yaml:"ports"`
	SSH       *bool    `yaml:"ssh"`
	SSHPort   int      `yaml:"ssh_port"` // sshd's port with ssh: true (default 22)
	// Firewall, when given (even empty), is all the traffic its nodes accept.
	Firewall []Rule `yaml:"firewall"`
	// Floating are addresses any of the role's nodes may take (VRRP).
	Floating []string `yaml:"floating"`
	// Unmask are units the image masks (they cost every boot and a lab
	// node seldom needs them) that this role's nodes run.
	Unmask []string `yaml:"unmask"`
	// Privileged container nodes run without a user namespace: root in
	// the node is root on the host. Nesting gives a node what running
	// containers inside it needs.
	Privileged *bool `yaml:"privileged"`
	Nesting    *bool `yaml:"nesting"`
	// LXD pins the role's nodes to a cluster member (provider lxd).
	LXD *RoleLXD `yaml:"lxd"`
}

// Container nodes are unprivileged unless the lab file says privileged:
// true (on the role or in defaults): root in a node is an unprivileged id
// on the host, as in LXD and Incus.

// IsPrivileged tells whether the role's container nodes are privileged.
func (r *Role) IsPrivileged() bool { return r.Privileged != nil && *r.Privileged }

// IsNesting tells whether the role's nodes may run containers.
func (r *Role) IsNesting() bool { return r.Nesting != nil && *r.Nesting }

// SSHEnabled tells whether the role's nodes run sshd with the lab's key.
func (r *Role) SSHEnabled() bool { return r.SSH != nil && *r.SSH }

// SSHPortOf is the port the role's sshd listens on.
func (r *Role) SSHPortOf() int {
	if r.SSHPort == 0 {
		return 22
	}
	return r.SSHPort
}

// Port forwards a host port on loopback to a port of one of the role's
// nodes: "8080:80", "127.0.0.2:8080:80", or {host: 8080, port: 80, node: web2}.
type Port struct {
	Host    int    `yaml:"host"`
	Port    int    `yaml:"port"`
	Node    string `yaml:"node"`
	Address string `yaml:"address"`
}

// UnmarshalScalar reads the short form.
func (p *Port) UnmarshalScalar(s string) error {
	pf, err := ParsePort(s)
	if err != nil {
		return err
	}
	*p = pf
	return nil
}

// Step is one provisioning step: exactly one of Shell, Inline or File.
type Step struct {
	Shell   string            `yaml:"shell"`
	Inline  string            `yaml:"inline"`
	File    *FileStep         `yaml:"file"`
	Ansible string            `yaml:"ansible"`
	Env     map[string]string `yaml:"env"`
	Run     string            `yaml:"run"`
}

// FileStep copies a file or folder from the host into the node.
type FileStep struct {
	Src   string `yaml:"src"`
	Dst   string `yaml:"dst"`
	Owner string `yaml:"owner"`
	Mode  string `yaml:"mode"`
}

// Check is one health check, run inside the node: exactly one of Command,
// TCP or HTTP.
type Check struct {
	Command string `yaml:"command"`
	TCP     int    `yaml:"tcp"`
	HTTP    string `yaml:"http"`
	Status  int    `yaml:"status"`
}

// Step kinds.
const (
	RunChanged = "changed" // default: run when the step's inputs changed or never succeeded
	RunAlways  = "always"
)

// CountOf returns a role's node count.
func (r *Role) CountOf() int {
	if r.Count == nil {
		return 1
	}
	return *r.Count
}

// FirstOf returns the index of a role's first node: 1 unless the file says
// `first` (which retires the lowest-numbered nodes when a count is lowered).
func (r *Role) FirstOf() int {
	if r.First == nil {
		return 1
	}
	return *r.First
}

// LastOf returns the index of a role's last node (FirstOf-1 when it has none).
func (r *Role) LastOf() int { return r.FirstOf() + r.CountOf() - 1 }

// Names are the names of the role's nodes: ROLE1, ROLE2, … (from `first`).
func (r *Role) Names() []string {
	out := make([]string, 0, r.CountOf())
	for i := r.FirstOf(); i <= r.LastOf(); i++ {
		out = append(out, NodeName(r.Role, i))
	}
	return out
}

// hasIndex tells whether s is the index of one of the role's nodes.
func (r *Role) hasIndex(s string) bool {
	i, err := strconv.Atoi(s)
	return err == nil && i >= r.FirstOf() && i <= r.LastOf() && strconv.Itoa(i) == s
}

// Line returns the line a field path was found at; for a path the file
// does not have (a required field left out), the line of the nearest
// enclosing one that it has; 0 when none.
func (t *Topology) Line(path string) int {
	for path != "" {
		if l, ok := t.lines[path]; ok && l > 0 {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

// checkExplicitZeros refuses a 0 the file writes where 0 would otherwise
// silently become the default (cpus: 0 is not "no CPUs").
func (t *Topology) checkExplicitZeros(errs *Errors) {
	zero := func(path string, v int) {
		if _, written := t.lines[path]; written && v == 0 {
			errs.add(path, t.lines[path], "0: want 1 to 256")
		}
	}
	zero("defaults.cpus", t.Defaults.CPUs)
	for i := range t.Nodes {
		zero(rolePath(i, "cpus"), t.Nodes[i].CPUs)
	}
}

// Options change built-in defaults (from the user's configuration).
type Options struct {
	Provider string // default provider when the file names none
	// HostPaths are host folders outside the lab's folder that its steps may
	// read (the user's own config, never the lab file).
	HostPaths []string
	// Providers are the provider names a lab file may use: the registry's,
	// which the topology does not know by itself (nil: names are not checked).
	Providers []string
	// MissingSources lets a script or file a step names be absent (lab graph
	// draws a lab whose files are built later); everything else is checked.
	MissingSources bool
}

// Load reads, decodes, defaults and validates a topology file.
func Load(path string) (*Topology, error) { return LoadWith(path, Options{}) }

// LoadWith is Load with options.
func LoadWith(path string, o Options) (*Topology, error) {
	data, err := fsx.ReadRegular(path, MaxFileSize)
	if err != nil {
		return nil, &Errors{File: path, List: []FieldError{{File: path, Msg: readErr(err)}}}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	return ParseWith(data, path, filepath.Dir(abs), o)
}

// MaxFileSize is the largest lab file lab reads.
const MaxFileSize = 4 << 20

func readErr(err error) string {
	if errors.Is(err, os.ErrNotExist) {
		return "no such file (give another with -f FILE or LAB_FILE)"
	}
	return err.Error()
}

// Parse decodes, defaults and validates topology bytes. name is used in error
// messages; dir is where relative script and file paths are looked up.
func Parse(data []byte, name, dir string) (*Topology, error) {
	return ParseWith(data, name, dir, Options{})
}

// ParseWith is Parse with options.
func ParseWith(data []byte, name, dir string, o Options) (*Topology, error) {
	errs := &Errors{File: name}
	t := &Topology{File: name, Dir: dir, lines: map[string]int{}, hostPaths: o.HostPaths, providers: o.Providers, missingOK: o.MissingSources}

	if line, msg := badBytes(data); msg != "" {
		errs.add("", line, msg)
		return nil, errs
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		errs.add("", syntaxLine(err, data), yamlSyntax(err))
		return nil, errs
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		errs.add("", extra.Line, "more than one YAML document; a lab file holds one")
		return nil, errs
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		line := 0
		if len(doc.Content) > 0 {
			line = doc.Content[0].Line
		}
		errs.add("", line, "the file must be a mapping with at least name and nodes")
		return nil, errs
	}
	d := &decoder{lines: t.lines, errs: errs}
	d.decode(&doc, "", reflect.ValueOf(t).Elem())
	if err := errs.orNil(); err != nil {
		return nil, err
	}
	if t.Defaults.Provider == "" {
		t.Defaults.Provider = o.Provider
	}
	t.checkExplicitZeros(errs)
	t.applyDefaults()
	t.validate(errs)
	if err := errs.orNil(); err != nil {
		return nil, err
	}
	return t, nil
}

// badBytes finds what YAML parsers report without a line: bytes that are
// not UTF-8, NUL and other control characters.
func badBytes(data []byte) (int, string) {
	line := 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return line, fmt.Sprintf("byte 0x%02x is not UTF-8 text", data[i])
		case r == 0:
			return line, "a NUL byte: a lab file is text"
		case r < 0x20 && r != '\n' && r != '\r' && r != '\t':
			return line, fmt.Sprintf("control character 0x%02x: a lab file is text", r)
		case r == '\n':
			line++
		}
		i += size
	}
	return 0, ""
}

var anchorRe = regexp.MustCompile(`unknown anchor '([^']*)' referenced`)

// syntaxLine finds the line of a YAML error that names none.
func syntaxLine(err error, data []byte) int {
	if m := anchorRe.FindStringSubmatch(err.Error()); m != nil {
		if i := bytes.Index(data, []byte("*"+m[1])); i >= 0 {
			return bytes.Count(data[:i], []byte("\n")) + 1
		}
	}
	return 0
}

// yamlSyntax turns yaml.v3's "yaml: line 3: ..." into "line 3: ...".
func yamlSyntax(err error) string {
	msg := err.Error()
	if len(msg) > 6 && msg[:6] == "yaml: " {
		msg = msg[6:]
	}
	return "YAML syntax: " + msg
}

// Built-in defaults, applied where the file says nothing.
const (
	DefaultProvider      = "lxc"
	DefaultImage         = "debian/bookworm"
	DefaultCPUs          = 1
	DefaultMemory        = "512M"
	DefaultNetwork       = "lan"
	DefaultBootTimeout   = "90s"
	DefaultHealthTimeout = "120s"
)

func (t *Topology) applyDefaults() {
	d := &t.Defaults
	if d.Provider == "" {
		d.Provider = DefaultProvider
	}
	if d.Image == "" {
		d.Image = DefaultImage
	}
	if d.CPUs == 0 {
		d.CPUs = DefaultCPUs
	}
	if d.Memory == "" {
		d.Memory = DefaultMemory
	}
	if d.BootTimeout == "" {
		d.BootTimeout = DefaultBootTimeout
	}
	if d.HealthTimeout == "" {
		d.HealthTimeout = DefaultHealthTimeout
	}
	if len(t.Networks) == 0 {
		t.Networks = []Network{{Name: DefaultNetwork}}
	}
	for i := range t.Networks {
		n := &t.Networks[i]
		if n.Domain == "" && t.Name != "" {
			n.Domain = t.Name + ".lab"
		}
	}
	for i := range t.Nodes {
		r := &t.Nodes[i]
		if r.Provider == "" {
			r.Provider = d.Provider
		}
		if r.Image == "" {
			r.Image = d.Image
		}
		if r.CPUs == 0 {
			r.CPUs = d.CPUs
		}
		if r.Memory == "" {
			r.Memory = d.Memory
		}
		if r.Accel == "" {
			r.Accel = d.Accel
		}
		if len(r.Networks) == 0 {
			r.Networks = []string{t.Networks[0].Name}
		}
		if r.SSH == nil {
			v := d.SSH
			r.SSH = &v
		}
		if r.Privileged == nil {
			v := d.Privileged != nil && *d.Privileged // see IsPrivileged
			r.Privileged = &v
		}
		if r.Nesting == nil {
			v := d.Nesting
			r.Nesting = &v
		}
		for j := range r.Ports {
			if r.Ports[j].Address == "" {
				r.Ports[j].Address = "127.0.0.1"
			}
		}
		for j := range r.Provision {
			if r.Provision[j].Run == "" {
				r.Provision[j].Run = RunChanged
			}
		}
		for j := range r.Health {
			if r.Health[j].HTTP != "" && r.Health[j].Status == 0 {
				r.Health[j].Status = 200
			}
		}
	}
}

// RoleByName returns the role with that name, or nil.
func (t *Topology) RoleByName(name string) *Role {
	for i := range t.Nodes {
		if t.Nodes[i].Role == name {
			return &t.Nodes[i]
		}
	}
	return nil
}

// Path resolves a path written in the topology against its folder.
func (t *Topology) Path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(t.Dir, p)
}

// Sprint is a helper for messages that name a role field.
func rolePath(i int, field string) string {
	return fmt.Sprintf("nodes[%d].%s", i, field)
}
