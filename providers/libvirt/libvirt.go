// Package libvirt runs lab nodes as VMs through libvirtd, with
// github.com/digitalocean/go-libvirt (libvirt's RPC protocol in pure Go).
// A VM boots its image's kernel directly from a qcow2 overlay on a disk made
// from the same cached root filesystems containers use, sits on the lab's
// bridges like a container, and is reached without SSH through
// qemu-guest-agent: commands, files, addresses, shutdown.
package libvirt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"

	"github.com/labctl/lab/providers"
)

// BasePackages go into every VM image: a kernel that boots it, udev,
// the guest agent lab talks through.
var BasePackages = []string{"linux-image-amd64", "initramfs-tools", "systemd-sysv", "udev", "iproute2", "iputils-ping", "procps", "netbase", "qemu-guest-agent"}

// DiskDir holds each VM's overlay disk and console log.
var DiskDir = "/var/lib/lab/libvirt"

func init() {
	providers.Register("libvirt", func(cfg providers.Config) (providers.Provider, error) {
		return &Provider{accel: cfg.Accel, log: os.Stderr, readOnly: cfg.ReadOnly}, nil
	})
}

// Provider is the libvirt backend. It connects on first use.
type Provider struct {
	accel string // forced acceleration (kvm or tcg), from LAB_LIBVIRT_ACCEL
	log   io.Writer
	// readOnly: never start libvirtd or change /dev/kvm (status, plan, …).
	readOnly bool

	mu   sync.Mutex
	conn *golibvirt.Libvirt
}

func (p *Provider) Name() string { return "libvirt" }

// ImagePackages are what every VM image needs.
func (p *Provider) ImagePackages() []string { return BasePackages }

func (p *Provider) lv() (*golibvirt.Libvirt, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != nil {
		select {
		case <-p.conn.Disconnected():
			p.conn = nil
		default:
			return p.conn, nil
		}
	}
	if p.readOnly {
		if !fileExists(Socket) {
			return nil, fmt.Errorf("libvirtd is not running (no %s); lab up starts it", Socket)
		}
	} else {
		fixKVMAccess(p.log)
		if err := ensureDaemons(p.log); err != nil {
			return nil, err
		}
	}
	l := golibvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(Socket), dialers.WithLocalTimeout(5*time.Second)))
	if err := l.ConnectToURI(golibvirt.QEMUSystem); err != nil {
		return nil, fmt.Errorf("libvirt: connect: %w", err)
	}
	p.conn = l
	return l, nil
}

func (p *Provider) paths(n providers.Node) (disk, console string) {
	return filepath.Join(DiskDir, n.ID+".qcow2"), filepath.Join(DiskDir, n.ID+".console.log")
}

// Accel chooses kvm or tcg for a node: the node's (or LAB_LIBVIRT_ACCEL's)
// choice, else kvm when /dev/kvm exists and has not been seen to hang here.
func (p *Provider) Accel(n providers.Node) string {
	for _, a := range []string{n.Accel, p.accel} {
		if a == "kvm" || a == "tcg" {
			return a
		}
	}
	if !fileExists("/dev/kvm") || kvmHangs() {
		return "tcg"
	}
	return "kvm"
}

// kvmVerdict remembers that KVM hung on this machine (nested KVM often
// exists but never runs a guest), so later boots go straight to TCG.
var kvmVerdict = "/var/lib/lab/kvm-hangs"

func kvmHangs() bool { return fileExists(kvmVerdict) }

func writeVerdict() error {
	if err := os.MkdirAll(filepath.Dir(kvmVerdict), 0o755); err != nil {
		return err
	}
	return os.WriteFile(kvmVerdict, []byte("KVM hung at boot; delete this file to try KVM again\n"), 0o644)
}

// DomainXML renders the domain of a node.
func (p *Provider) DomainXML(n providers.Node, base *vmBase, accel string) string {
	disk, console := p.paths(n)
	typ := "qemu"
	if accel == "kvm" {
		typ = "kvm"
	}
	cpus := n.CPUs
	if cpus < 1 {
		cpus = 1
	}
	mem := n.Memory >> 20
	if mem < 256 {
		mem = 256
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<domain type='%s'>
  <name>%s</name>
  <uuid>%s</uuid>
  <description>%s</description>
  <memory unit='MiB'>%d</memory>
  <vcpu>%d</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>%s</kernel>
    <initrd>%s</initrd>
    <cmdline>root=/dev/vda rw console=ttyS0 net.ifnames=0 systemd.show_status=0</cmdline>
  </os>
  <features><acpi/><apic/></features>
`, typ, n.ID, uuid(n.Lab, n.Name), xmlText(description(n)), mem, cpus, base.Kernel, base.Initrd)
	if accel == "kvm" {
		b.WriteString("  <cpu mode='host-passthrough'/>\n")
	} else {
		// TCG: emulate the newest CPU qemu can (qemu64 boots far slower).
		b.WriteString("  <cpu mode='maximum'/>\n")
	}
	fmt.Fprintf(&b, `  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <seclabel type='static' model='dac' relabel='no'><label>+0:+0</label></seclabel>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='unsafe' discard='unmap'/>
      <source file='%s'/>
      <target dev='vda' bus='virtio'/>
    </disk>
`, disk)
	for i, ifc := range n.Interfaces {
		fmt.Fprintf(&b, `    <interface type='bridge'>
      <mac address='%s'/>
      <source bridge='%s'/>
      <model type='virtio'/>
    </interface>
`, mac(n.Lab, n.Name, i), ifc.Bridge)
	}
	fmt.Fprintf(&b, `    <serial type='file'>
      <source path='%s' append='off'/>
      <target port='0'/>
    </serial>
    <serial type='pty'><target port='1'/></serial>
    <console type='pty'><target type='serial' port='1'/></console>
    <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
    <memballoon model='none'/>
  </devices>
</domain>
`, console)
	return b.String()
}

// uuid is a stable UUID for a node's domain, so that defining it again
// updates it instead of clashing with itself.
func uuid(lab, node string) string {
	h := sha256.Sum256([]byte("lab-domain/" + lab + "/" + node))
	h[6] = h[6]&0x0f | 0x40 // version 4 layout
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// mac is a stable MAC address in QEMU's range for a node's interface.
func mac(lab, node string, i int) string {
	h := fnv32(fmt.Sprintf("%s/%s/%d", lab, node, i))
	return fmt.Sprintf("52:54:00:%02x:%02x:%02x", byte(h>>16), byte(h>>8), byte(h))
}

func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

func (p *Provider) lookup(l *golibvirt.Libvirt, n providers.Node) (golibvirt.Domain, bool, error) {
	d, err := l.DomainLookupByName(n.ID)
	if err != nil {
		if golibvirt.IsNotFound(err) {
			return d, false, nil
		}
		return d, false, fmt.Errorf("node %s: libvirt: %w", n.Name, err)
	}
	return d, true, nil
}

func (p *Provider) Create(ctx context.Context, n providers.Node) error {
	if n.Image.RootFS == "" {
		return fmt.Errorf("node %s: create: no image", n.Name)
	}
	l, err := p.lv()
	if err != nil {
		return err
	}
	if d, ok, err := p.lookup(l, n); err != nil {
		return err
	} else if ok {
		if err := p.checkOwner(l, d, n); err != nil {
			return err
		}
		if st, _, err := l.DomainGetState(d, 0); err == nil && golibvirt.DomainState(st) == golibvirt.DomainRunning {
			return nil
		}
	}
	base, err := ensureBase(ctx, n.Image.RootFS)
	if err != nil {
		return fmt.Errorf("node %s: vm disk: %w", n.Name, err)
	}
	if err := os.MkdirAll(DiskDir, 0o755); err != nil {
		return err
	}
	disk, _ := p.paths(n)
	if !fileExists(disk) {
		if out, err := exec.CommandContext(ctx, "qemu-img", "create", "-q", "-f", "qcow2", "-b", base.Disk, "-F", "qcow2", disk).CombinedOutput(); err != nil {
			return fmt.Errorf("node %s: overlay: %v: %s", n.Name, err, out)
		}
	}
	if _, err := l.DomainDefineXML(p.DomainXML(n, base, p.Accel(n))); err != nil {
		return fmt.Errorf("node %s: define: %w", n.Name, err)
	}
	return nil
}

func (p *Provider) Start(ctx context.Context, n providers.Node) error {
	l, d, err := p.domain(n)
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	accel := p.Accel(n)
	autoKVM := accel == "kvm" && n.Accel != "kvm" && p.accel != "kvm"
	if st, _, err := l.DomainGetState(d, 0); err == nil && golibvirt.DomainState(st) != golibvirt.DomainRunning {
		if err := l.DomainCreate(d); err != nil {
			if autoKVM {
				return p.fallbackToTCG(ctx, l, d, n, err)
			}
			return fmt.Errorf("node %s: start: %w", n.Name, err)
		}
	}
	err = p.waitAgent(ctx, l, d, n, accel)
	if errors.Is(err, errKVMHang) && autoKVM {
		return p.fallbackToTCG(ctx, l, d, n, errors.New("the boot stopped making progress"))
	}
	if err != nil {
		return err
	}
	if err := p.configure(ctx, n); err != nil {
		return err
	}
	return providers.WaitSystemd(ctx, p, n, 150*time.Millisecond)
}

var errKVMHang = errors.New("kvm hang")

// fallbackToTCG is for a KVM that exists but does not run guests (nested
// virtualization often fails at start or hangs in early boot): it remembers
// that on this machine and boots the node again with TCG.
func (p *Provider) fallbackToTCG(ctx context.Context, l *golibvirt.Libvirt, d golibvirt.Domain, n providers.Node, why error) error {
	fmt.Fprintf(p.log, "lab: node %s: KVM does not run guests on this machine (%v); using TCG from now on (accel: kvm forces KVM)\n", n.Name, firstLine(why.Error()))
	if err := writeVerdict(); err != nil {
		return err
	}
	_ = l.DomainDestroy(d)
	if err := p.Create(ctx, n); err != nil {
		return err
	}
	return p.Start(ctx, n)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// waitAgent waits until the guest agent answers. A console that stops
// growing means the boot does not progress: under KVM that is the nested
// KVM hang; under TCG, a broken image.
func (p *Provider) waitAgent(ctx context.Context, l *golibvirt.Libvirt, d golibvirt.Domain, n providers.Node, accel string) error {
	_, console := p.paths(n)
	stall := 90 * time.Second
	if accel == "kvm" {
		stall = 20 * time.Second
	}
	lastSize, lastChange := int64(-1), time.Now()
	for {
		if _, err := l.QEMUDomainAgentCommand(d, `{"execute":"guest-ping"}`, 1, 0); err == nil {
			return nil
		}
		if fi, err := os.Stat(console); err == nil && fi.Size() != lastSize {
			lastSize, lastChange = fi.Size(), time.Now()
		}
		if time.Since(lastChange) > stall {
			if accel == "kvm" {
				return errKVMHang
			}
			return fmt.Errorf("node %s: boot does not progress (console %s: %s)", n.Name, console, lastLine(console))
		}
		if st, _, err := l.DomainGetState(d, 0); err == nil && golibvirt.DomainState(st) == golibvirt.DomainShutoff {
			return fmt.Errorf("node %s: the VM stopped while booting (console %s: %s)", n.Name, console, lastLine(console))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %s: boot: %w (console %s: %s)", n.Name, ctx.Err(), console, lastLine(console))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func lastLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "no output"
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// configure gives the VM its addresses and name through the agent: no DHCP,
// no gateway, the same addresses a container of that node would have.
func (p *Provider) configure(ctx context.Context, n providers.Node) error {
	var s strings.Builder
	s.WriteString("set -e\n")
	for i, ifc := range n.Interfaces {
		fmt.Fprintf(&s, "ip link set eth%d up\nip addr replace %s brd %s dev eth%d\n", i, ifc.Addr, providers.Broadcast(ifc.Addr), i)
	}
	fmt.Fprintf(&s, "hostname %s\necho %s > /etc/hostname\n", n.Name, n.Name)
	// Folders the lab's files go to, so WriteFiles needs no exec of its own.
	s.WriteString("mkdir -p /etc/lab /root/.ssh\n")
	var out bytes.Buffer
	code, err := p.Exec(ctx, n, []string{"/bin/sh", "-c", s.String()}, providers.ExecIO{Stdout: &out, Stderr: &out})
	if err != nil {
		return fmt.Errorf("node %s: network: %w", n.Name, err)
	}
	if code != 0 {
		return fmt.Errorf("node %s: network: exit %d: %s", n.Name, code, strings.TrimSpace(out.String()))
	}
	return nil
}

func (p *Provider) Stop(ctx context.Context, n providers.Node) error {
	l, err := p.lv()
	if err != nil {
		return err
	}
	d, ok, err := p.lookup(l, n)
	if err != nil || !ok {
		return err
	}
	if st, _, err := l.DomainGetState(d, 0); err != nil || golibvirt.DomainState(st) != golibvirt.DomainRunning {
		return err
	}
	// A clean shutdown: systemd through the agent (the agent's own
	// guest-shutdown schedules it through logind, which needs D-Bus that
	// minimal images lack), else ACPI; forced after a while.
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err = p.Exec(actx, n, []string{"systemctl", "poweroff", "--no-block"}, providers.ExecIO{})
	cancel()
	if err != nil {
		_ = l.DomainShutdownFlags(d, golibvirt.DomainShutdownAcpiPowerBtn)
	}
	deadline := time.Now().Add(30 * time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	for time.Now().Before(deadline) {
		if st, _, err := l.DomainGetState(d, 0); err == nil && golibvirt.DomainState(st) == golibvirt.DomainShutoff {
			return nil
		}
		time.Sleep(300 * time.Millisecond)
	}
	if err := l.DomainDestroy(d); err != nil {
		return fmt.Errorf("node %s: stop: %w", n.Name, err)
	}
	return nil
}

func (p *Provider) Destroy(ctx context.Context, n providers.Node) error {
	if n.ID == "" || strings.ContainsAny(n.ID, "/ ") {
		return fmt.Errorf("node %s: destroy: bad domain name %q", n.Name, n.ID)
	}
	l, err := p.lv()
	if err != nil {
		return err
	}
	d, ok, err := p.lookup(l, n)
	if err != nil {
		return err
	}
	if ok {
		if err := p.checkOwner(l, d, n); err != nil {
			return err
		}
		if st, _, err := l.DomainGetState(d, 0); err == nil && golibvirt.DomainState(st) != golibvirt.DomainShutoff {
			if err := l.DomainDestroy(d); err != nil && !golibvirt.IsNotFound(err) {
				return fmt.Errorf("node %s: destroy: %w", n.Name, err)
			}
		}
		if err := l.DomainUndefineFlags(d, golibvirt.DomainUndefineManagedSave|golibvirt.DomainUndefineNvram); err != nil && !golibvirt.IsNotFound(err) {
			return fmt.Errorf("node %s: undefine: %w", n.Name, err)
		}
	}
	disk, console := p.paths(n)
	for _, f := range []string{disk, console} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("node %s: destroy: %w", n.Name, err)
		}
	}
	return nil
}

func (p *Provider) State(ctx context.Context, n providers.Node) (providers.State, error) {
	l, err := p.lv()
	if err != nil {
		return providers.Unknown, err
	}
	d, ok, err := p.lookup(l, n)
	if err != nil {
		return providers.Unknown, err
	}
	if !ok {
		return providers.Absent, nil
	}
	st, _, err := l.DomainGetState(d, 0)
	if err != nil {
		return providers.Unknown, err
	}
	switch golibvirt.DomainState(st) {
	case golibvirt.DomainRunning:
		return providers.Running, nil
	case golibvirt.DomainShutoff:
		return providers.Stopped, nil
	}
	return providers.Unknown, nil
}

// domain connects and finds a node's domain, which must exist.
func (p *Provider) domain(n providers.Node) (*golibvirt.Libvirt, golibvirt.Domain, error) {
	l, err := p.lv()
	if err != nil {
		return nil, golibvirt.Domain{}, err
	}
	d, ok, err := p.lookup(l, n)
	if err == nil && !ok {
		err = fmt.Errorf("node %s: domain %s is not defined", n.Name, n.ID)
	}
	return l, d, err
}

// agent runs one guest agent command and decodes its "return".
func (p *Provider) agent(n providers.Node, cmd string, args any, out any) error {
	l, d, err := p.domain(n)
	if err != nil {
		return err
	}
	req, _ := json.Marshal(map[string]any{"execute": cmd, "arguments": args})
	res, err := l.QEMUDomainAgentCommand(d, string(req), 30, 0)
	if err != nil {
		return fmt.Errorf("node %s: guest agent %s: %w", n.Name, cmd, err)
	}
	if len(res) == 0 {
		return nil
	}
	var env struct {
		Return json.RawMessage `json:"return"`
	}
	if err := json.Unmarshal([]byte(res[0]), &env); err != nil {
		return err
	}
	if out != nil {
		return json.Unmarshal(env.Return, out)
	}
	return nil
}

// Exec runs a command through the guest agent (guest-exec). Output arrives
// when the command ends.
func (p *Provider) Exec(ctx context.Context, n providers.Node, cmd []string, eio providers.ExecIO) (int, error) {
	if len(cmd) == 0 {
		return -1, errors.New("exec: no command")
	}
	args := map[string]any{
		"path":           "/bin/sh",
		"arg":            append([]string{"-c", `cd "$LAB_CWD" 2>/dev/null || cd /; unset LAB_CWD; "$@"`, "sh"}, cmd...),
		"env":            append(append(append([]string{}, providers.BaseEnv...), eio.Env...), "LAB_CWD="+orDefault(eio.Dir, "/root")),
		"capture-output": true,
	}
	if eio.Stdin != nil {
		in, err := io.ReadAll(eio.Stdin)
		if err != nil {
			return -1, err
		}
		args["input-data"] = base64.StdEncoding.EncodeToString(in)
	}
	var started struct {
		PID int `json:"pid"`
	}
	if err := p.agent(n, "guest-exec", args, &started); err != nil {
		return -1, err
	}
	delay := 20 * time.Millisecond
	for {
		var st struct {
			Exited   bool   `json:"exited"`
			ExitCode int    `json:"exitcode"`
			Signal   int    `json:"signal"`
			OutData  string `json:"out-data"`
			ErrData  string `json:"err-data"`
		}
		if err := p.agent(n, "guest-exec-status", map[string]any{"pid": started.PID}, &st); err != nil {
			return -1, err
		}
		if st.Exited {
			for _, o := range []struct {
				data string
				w    io.Writer
			}{{st.OutData, eio.Stdout}, {st.ErrData, eio.Stderr}} {
				if o.w == nil || o.data == "" {
					continue
				}
				b, err := base64.StdEncoding.DecodeString(o.data)
				if err != nil {
					return -1, err
				}
				_, _ = o.w.Write(b)
			}
			if st.Signal != 0 {
				return 128 + st.Signal, nil
			}
			return st.ExitCode, nil
		}
		select {
		case <-ctx.Done():
			return -1, ctx.Err()
		case <-time.After(delay):
		}
		if delay < 250*time.Millisecond {
			delay *= 2
		}
	}
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func (p *Provider) CopyIn(ctx context.Context, n providers.Node, src io.Reader, dst string, mode fs.FileMode) error {
	return providers.CopyInWithExec(ctx, p, n, src, dst, mode)
}

// Shell opens the VM's serial console, where root is logged in (leave with
// Ctrl-]); a command runs through the agent instead.
func (p *Provider) Shell(ctx context.Context, n providers.Node, cmd []string) error {
	if len(cmd) > 0 {
		code, err := p.Exec(ctx, n, cmd, providers.ExecIO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
		if err != nil {
			return err
		}
		if code != 0 {
			return &providers.ExitError{Code: code}
		}
		return nil
	}
	fmt.Fprintf(os.Stderr, "lab: console of %s (leave with Ctrl-])\n", n.Name)
	c := exec.CommandContext(ctx, "virsh", "-c", "qemu:///system", "console", "--force", n.ID)
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	return c.Run()
}

// WriteFiles writes files through the agent's file API (no process to
// start, which is slow under TCG), each to PATH.lab-new, then renames them
// all into place and runs script in one exec.
func (p *Provider) WriteFiles(ctx context.Context, n providers.Node, files map[string]string, script string) error {
	paths := make([]string, 0, len(files))
	for f := range files {
		paths = append(paths, f)
	}
	sort.Strings(paths)
	madeDirs := false
	for _, f := range paths {
		err := p.writeFile(n, f+".lab-new", files[f])
		if err != nil && !madeDirs {
			// Missing folders: make all of them at once, then try again.
			dirs := []string{"-p"}
			for _, g := range paths {
				dirs = append(dirs, filepath.Dir(g))
			}
			if code, xerr := p.Exec(ctx, n, append([]string{"mkdir"}, dirs...), providers.ExecIO{}); xerr != nil || code != 0 {
				return fmt.Errorf("mkdir: exit %d: %v (after %v)", code, xerr, err)
			}
			madeDirs = true
			err = p.writeFile(n, f+".lab-new", files[f])
		}
		if err != nil {
			return err
		}
	}
	var stderr bytes.Buffer
	cmd := append([]string{"/bin/sh", "-c", `for f; do chmod 0644 "$f.lab-new"; mv -f "$f.lab-new" "$f"; done` + "\n" + script, "sh"}, paths...)
	code, err := p.Exec(ctx, n, cmd, providers.ExecIO{Stderr: &stderr})
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("exit %d: %s", code, strings.TrimSpace(stderr.String()))
	}
	return nil
}

func (p *Provider) writeFile(n providers.Node, path, content string) error {
	var handle int
	if err := p.agent(n, "guest-file-open", map[string]any{"path": path, "mode": "w"}, &handle); err != nil {
		return err
	}
	err := p.agent(n, "guest-file-write", map[string]any{"handle": handle, "buf-b64": base64.StdEncoding.EncodeToString([]byte(content))}, nil)
	if cerr := p.agent(n, "guest-file-close", map[string]any{"handle": handle}, nil); err == nil {
		err = cerr
	}
	return err
}
