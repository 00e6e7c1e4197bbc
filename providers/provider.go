// Package providers defines what a backend (LXC, libvirt) does for lab: one
// small interface, and a registry by name. Providers know machines, bridges
// and images; they know nothing of roles or provisioning scripts.
package providers

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"
)

// Node is what a provider needs to know about one machine.
type Node struct {
	Lab        string      // lab name
	Name       string      // node name, also its hostname (pg1)
	ID         string      // the provider's name for it (todomvc-pg1)
	CPUs       int         // CPU limit
	Memory     int64       // memory limit, bytes
	Interfaces []Interface // in order: eth0, eth1, …
	Image      Image
	Accel      string // libvirt: kvm or tcg ("" = detect)
	// Unprivileged: a container in a user namespace (Info.UserNamespaces
	// and not privileged in the lab file). Nesting: it may run containers.
	Unprivileged bool
	Nesting      bool
	// Owner is the lab's state folder. A provider records it with the node
	// and never adopts or destroys a node that another owner made.
	Owner string
	// Target is the cluster member the lab file pins the node to ("": the
	// provider places it).
	Target string
}

// Interface is one network interface of a node.
type Interface struct {
	Bridge string
	Addr   netip.Prefix // address with the subnet's length, such as 10.80.0.11/24
	Addr6  netip.Prefix // IPv6 address, such as fd…::11/64 (invalid: IPv4 only)
}

// Image is a built, cached root filesystem a node starts from.
type Image struct {
	Key    string // content key (hash of suite, mirror and packages)
	RootFS string // folder with the root filesystem
}

// State is a node's state as the provider sees it.
type State string

const (
	Absent  State = "absent"
	Stopped State = "stopped"
	Running State = "running"
	Paused  State = "paused"
	Unknown State = "unknown"
)

// ExecIO connects a command run in a node.
type ExecIO struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Env    []string // KEY=VALUE added to a clean environment
	Dir    string   // working directory, default /
}

// Info says what a backend can do beyond the lifecycle every provider has,
// in the spirit of kind's ProviderInfo: the engine asks, it never assumes.
// A capability with a method of its own is an optional interface as well
// (Lister, FileWriter, ImagePackager), so a caller can also test for it.
type Info struct {
	// OwnsNetwork: the backend makes its nodes' network itself (an LXD
	// cluster's managed network); lab makes no bridge or DNS for its nodes.
	OwnsNetwork bool `json:"owns_network"`
	// Snapshots: it can save a node's disk and restore it.
	Snapshots bool `json:"snapshots"`
	// Pause: it can freeze a node and thaw it again.
	Pause bool `json:"pause"`
	// Rootless: it runs its nodes without root on the host.
	Rootless bool `json:"rootless"`
	// Remote: its nodes live on other machines.
	Remote bool `json:"remote"`
	// StreamsOutput: Exec passes output on as the command writes it (else
	// only once the command has ended, as through a guest agent).
	StreamsOutput bool `json:"streams_output"`
	// SharesKernel: its nodes are processes of this host's kernel (system
	// containers), and count against its limits (inotify, keys).
	SharesKernel bool `json:"shares_kernel"`
	// UserNamespaces: its nodes run in a user namespace unless the lab file
	// says privileged: root in a node is an unprivileged id on the host.
	UserNamespaces bool `json:"user_namespaces"`
}

// Provider is one backend.
type Provider interface {
	Name() string
	// Info says what the backend can do.
	Info() Info
	// Create makes the node from its image, stopped. It is safe to call on a
	// node that was partly created before.
	Create(ctx context.Context, n Node) error
	// Start boots the node and returns when its init reports the system up
	// (systemd running or degraded), or ctx ends.
	Start(ctx context.Context, n Node) error
	// Stop shuts the node down and keeps it.
	Stop(ctx context.Context, n Node) error
	// Destroy removes the node and everything the provider made for it. It
	// succeeds on a node that does not exist.
	Destroy(ctx context.Context, n Node) error
	State(ctx context.Context, n Node) (State, error)
	// Exec runs cmd in the node and returns its exit code. err is for
	// failures to run it at all.
	Exec(ctx context.Context, n Node, cmd []string, eio ExecIO) (int, error)
	// CopyIn writes src to the path dst in the node, creating parent folders.
	CopyIn(ctx context.Context, n Node, src io.Reader, dst string, mode fs.FileMode) error
	// Shell opens an interactive shell in the node on the caller's terminal.
	Shell(ctx context.Context, n Node, cmd []string) error
}

// ExitError is a command in a node that exited non-zero.
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// ImagePackager is a provider whose images need packages of their own (init,
// network tools, a guest agent).
type ImagePackager interface {
	ImagePackages() []string
}

// ContainerPackages go into every system container's image (LXC's, LXD's):
// an init, and the tools lab and its users reach a node's network with.
var ContainerPackages = []string{"systemd-sysv", "iproute2", "iputils-ping", "procps", "netbase"}

// FileWriter is a provider that can write a set of files into a node
// more cheaply than a shell script run through Exec (a VM's agent writes
// files without starting a process). Each file is replaced atomically;
// then script, if any, runs with sh.
type FileWriter interface {
	WriteFiles(ctx context.Context, n Node, files map[string]string, script string) error
}

// BaseEnv is the environment commands in nodes start from.
var BaseEnv = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"HOME=/root",
	"USER=root",
	"LANG=C.UTF-8",
	"DEBIAN_FRONTEND=noninteractive",
}

// CopyInWithExec writes src to dst in a node through p's Exec: into a
// temporary file beside dst, then renamed, so readers never see half a file.
// Providers without a better way use it for CopyIn.
func CopyInWithExec(ctx context.Context, p Provider, n Node, src io.Reader, dst string, mode fs.FileMode) error {
	script := `set -e; d=$(dirname "$1"); mkdir -p "$d"; t="$1.lab-tmp.$$"; cat > "$t"; chmod "$2" "$t"; mv -f "$t" "$1"`
	var stderr strings.Builder
	code, err := p.Exec(ctx, n, []string{"/bin/sh", "-c", script, "sh", dst, fmt.Sprintf("%o", mode.Perm())}, ExecIO{Stdin: src, Stderr: &stderr})
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("node %s: write %s: exit %d: %s", n.Name, dst, code, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// WaitSystemd polls `systemctl is-system-running` in a node through p's
// Exec until systemd reports the system up (running or degraded). It fails
// when systemd says maintenance or stopping, when the node stops, or when
// ctx ends. (Asking with --wait too early fails with "Failed to connect to
// bus"; polling does not.)
func WaitSystemd(ctx context.Context, p Provider, n Node, poll time.Duration) error {
	var last string
	for {
		var out strings.Builder
		code, err := p.Exec(ctx, n, []string{"systemctl", "is-system-running"}, ExecIO{Stdout: &out})
		last = strings.TrimSpace(out.String())
		if err == nil && (last == "running" || last == "degraded") {
			return nil
		}
		if err == nil && code != 0 && (last == "maintenance" || last == "stopping") {
			return fmt.Errorf("node %s: boot: systemd says %q", n.Name, last)
		}
		if st, _ := p.State(ctx, n); st == Stopped {
			return fmt.Errorf("node %s: boot: the node stopped", n.Name)
		}
		select {
		case <-ctx.Done():
			if last == "" {
				last = "no answer"
			}
			return fmt.Errorf("node %s: boot: %w (systemd: %s)", n.Name, ctx.Err(), last)
		case <-time.After(poll):
		}
	}
}

// PortNamer is a provider whose nodes' host-side interfaces are named
// when they start, not by PortName: liblxc's lxc-user-nic names a user's
// veths itself. NamesPorts tells whether it does (for this run of lab);
// Ports lists a running node's first count, in the order of its
// interfaces.
type PortNamer interface {
	NamesPorts() bool
	Ports(ctx context.Context, n Node, count int) ([]string, error)
}

// PortName is the host-side interface of a node's i-th network interface
// (the veth of a container, the tap of a VM): fixed, so that the host's
// firewall and fault rules can name it before the node starts, and short
// enough for Linux (15 characters).
func PortName(lab, node string, i int) string {
	h := fnv.New32a()
	fmt.Fprintf(h, "%s/%s", lab, node)
	return fmt.Sprintf("v%08x-%d", h.Sum32(), i)
}

// Broadcast is the broadcast address of an interface's subnet.
func Broadcast(p netip.Prefix) string {
	a := p.Masked().Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v |= (1 << (32 - p.Bits())) - 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).String()
}

// Found is a node a provider made on this machine, as it can tell without
// any lab's state: for cleaning up after a lab whose state folder is gone.
type Found struct {
	Provider string
	ID       string
	Lab      string // the lab's name, as recorded with the node
	Node     string
	Owner    string // the lab's state folder, "" when not recorded (older nodes)
	State    State
}

// Pauser is a provider that can freeze every process of a node and thaw
// them again, without a reboot (Info.Pause).
type Pauser interface {
	Pause(ctx context.Context, n Node) error
	Resume(ctx context.Context, n Node) error
}

// Killer is a provider that can stop a node hard: no clean shutdown, as a
// power cut or an OOM kill of the whole machine.
type Killer interface {
	Kill(ctx context.Context, n Node) error
}

// Snapshotter is a provider that can copy a node's own disk (its changes,
// never the shared image) into a folder and put such a copy back
// (Info.Snapshots). SaveDisk is called on a stopped or paused node;
// RestoreDisk on a stopped one. TakeDisk is RestoreDisk for a copy the
// caller discards afterwards: it may move the saved disk out of dir
// instead of copying it.
type Snapshotter interface {
	SaveDisk(ctx context.Context, n Node, dir string) error
	RestoreDisk(ctx context.Context, n Node, dir string) error
	TakeDisk(ctx context.Context, n Node, dir string) error
}

// NetworkOwner is a provider that makes its nodes' networks itself
// (Info.OwnsNetwork): lab hands it each network and the names its DNS
// serves instead of making a bridge and a dnsmasq.
type NetworkOwner interface {
	EnsureNetwork(ctx context.Context, lab string, n Network) error
	// SetNames replaces the names the network's DNS serves: lines of
	// "ADDRESS NAME", as in /etc/hosts.
	SetNames(ctx context.Context, n Network, hosts string) error
	RemoveNetwork(ctx context.Context, lab, bridge string) error
}

// Network is a lab network as a NetworkOwner makes it.
type Network struct {
	Bridge   string       // lab-LAB-I: the name it has on every member
	Subnet   netip.Prefix // 10.80.0.0/24
	Gateway  netip.Addr   // 10.80.0.1
	Subnet6  netip.Prefix // invalid: IPv4 only
	Gateway6 netip.Addr
	Domain   string // the DNS domain of the lab's names
	// Host and Host6 are this host's own port on the network, where lab
	// and its user reach the nodes from (topology.Net.HostPort).
	Host, Host6 netip.Addr
}

// Locator is a provider whose nodes live on one of several machines (an
// LXD cluster's members): Locate says which, for lab status, and whether
// that machine answers.
type Locator interface {
	Locate(ctx context.Context, ids []Node) (map[string]Location, error)
}

// Location is where a node lives: the member, and whether it is online.
type Location struct {
	Member string
	Online bool
}

// Lister is a provider that can list the nodes lab made with it.
type Lister interface {
	List(ctx context.Context) ([]Found, error)
}

// OwnerError says a node's id is taken by something this lab did not make.
type OwnerError struct {
	Node, ID, Owner string
}

func (e *OwnerError) Error() string {
	if e.Owner == "" {
		return fmt.Sprintf("node %s: %s already exists and lab did not make it for this lab: refusing to adopt or remove it", e.Node, e.ID)
	}
	return fmt.Sprintf("node %s: %s already exists and belongs to the lab recorded in %s: refusing to adopt or remove it", e.Node, e.ID, e.Owner)
}

// ErrNotImplemented is returned by operations a provider cannot do yet.
var ErrNotImplemented = errors.New("not implemented yet")

// Factory makes a provider from the user's settings.
type Factory func(cfg Config) (Provider, error)

// Config is what providers may read from the user's configuration.
type Config struct {
	LXCPath string // where LXC keeps containers (/var/lib/lxc)
	Accel   string // libvirt: force kvm or tcg
	// ReadOnly is for commands that only look (status, plan, inventory):
	// the provider starts no daemon and changes nothing on the host.
	ReadOnly bool
	// LXDRemote and LXDProject say where provider lxd makes nodes: a
	// remote of LXD's client ("": the local LXD) and a project ("":
	// default).
	LXDRemote, LXDProject string
}

var (
	mu        sync.Mutex
	factories = map[string]Factory{}
)

// Register makes a provider available by name; backends call it from init.
func Register(name string, f Factory) {
	mu.Lock()
	defer mu.Unlock()
	factories[name] = f
}

// New returns the provider registered under name.
func New(name string, cfg Config) (Provider, error) {
	mu.Lock()
	f, ok := factories[name]
	mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("provider %q is not available in this build (have: %v)", name, Names())
	}
	return f(cfg)
}

// Names lists the registered providers.
func Names() []string {
	mu.Lock()
	defer mu.Unlock()
	var out []string
	for k := range factories {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
