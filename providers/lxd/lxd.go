// Package lxd runs lab nodes as instances of an LXD server or cluster
// (#21), through LXD's client program: placement, the cluster database and
// the network across members are LXD's. Work in progress: see docs/lxd.md.
package lxd

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labctl/lab/providers"
)

func init() {
	providers.Register("lxd", func(cfg providers.Config) (providers.Provider, error) {
		return New(cfg.LXDRemote, cfg.LXDProject), nil
	})
}

// Provider is the LXD backend.
type Provider struct {
	c         client
	importing sync.Mutex // one image import at a time
}

// New is a provider for remote (""/"local": the local LXD) and project.
func New(remote, project string) *Provider {
	if remote == "local" {
		remote = ""
	}
	return &Provider{c: client{bin: "lxc", remote: remote, project: project, env: os.Environ()}}
}

func (p *Provider) Name() string { return "lxd" }

func (p *Provider) Info() providers.Info {
	return providers.Info{OwnsNetwork: true, Remote: true, Pause: true, StreamsOutput: true, UserNamespaces: true, Snapshots: true}
}

// ImagePackages: what LXC's containers have, and nftables: a node on an
// LXD network holds lab's rules for it itself (engine: guardInside).
func (p *Provider) ImagePackages() []string {
	return append(append([]string{}, providers.ContainerPackages...), "nftables")
}

var instanceRe = regexp.MustCompile(`[^a-zA-Z0-9-]`)

// instance is a node's instance name: LXD allows letters, digits and
// hyphens only.
func instance(n providers.Node) string {
	return instanceRe.ReplaceAllString(n.Lab+"-"+n.Name, "-")
}

// createRequest is the body of POST /1.0/instances for n.
func createRequest(n providers.Node) map[string]any {
	config := map[string]string{
		"user.lab.lab":        n.Lab,
		"user.lab.node":       n.Name,
		"user.lab.owner":      n.Owner,
		"user.lab.image":      n.Image.Key,
		"security.privileged": strconv.FormatBool(!n.Unprivileged),
		"security.nesting":    strconv.FormatBool(n.Nesting),
	}
	if n.CPUs > 0 {
		config["limits.cpu"] = strconv.Itoa(n.CPUs)
	}
	if n.Memory > 0 {
		config["limits.memory"] = strconv.FormatInt(n.Memory, 10)
	}
	devices := map[string]any{}
	// The node's own name from its first boot, as on the LXC provider (LXD
	// would name it after the instance, LAB-NODE, until lab sets it).
	raw := []string{"lxc.uts.name = " + n.Name}
	for i, ifc := range n.Interfaces {
		name := fmt.Sprintf("eth%d", i)
		devices[name] = map[string]string{"type": "nic", "network": netName(ifc.Bridge), "name": name}
		// Fixed addresses, set by liblxc before init as on the LXC
		// provider (LXD's ipv4.address is only a DHCP lease).
		raw = append(raw, fmt.Sprintf("lxc.net.%d.ipv4.address = %s", i, ifc.Addr))
		if ifc.Addr6.IsValid() {
			raw = append(raw, fmt.Sprintf("lxc.net.%d.ipv6.address = %s", i, ifc.Addr6))
			// LXD's dnsmasq advertises the network's prefix: a node takes
			// only its fixed address, not a second one by SLAAC (whose
			// source address no rule of lab's knows).
			raw = append(raw, fmt.Sprintf("lxc.sysctl.net.ipv6.conf.%s.accept_ra = 0", name), fmt.Sprintf("lxc.sysctl.net.ipv6.conf.%s.autoconf = 0", name))
		}
	}
	config["raw.lxc"] = strings.Join(raw, "\n")
	return map[string]any{
		"name":    instance(n),
		"type":    "container",
		"source":  map[string]string{"type": "image", "alias": alias(n.Image)},
		"config":  config,
		"devices": devices,
	}
}

// Create makes the node's instance from its image, stopped, on the member
// the lab file pins it to (else where LXD's scheduler puts it).
func (p *Provider) Create(ctx context.Context, n providers.Node) error {
	st, err := p.State(ctx, n)
	if err != nil {
		return err
	}
	if st != providers.Absent {
		_, err := p.checkOwner(ctx, n)
		return err
	}
	if err := p.ensureImage(ctx, n.Image); err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	path := "/1.0/instances"
	if n.Target != "" {
		path += "?target=" + n.Target
	}
	if err := p.c.query(ctx, "POST", path, createRequest(n), nil); err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err) // the operation names the member
	}
	return nil
}

func (p *Provider) action(ctx context.Context, n providers.Node, verb string, force bool) error {
	body := map[string]any{"action": verb, "timeout": 30, "force": force}
	if err := p.c.query(ctx, "PUT", "/1.0/instances/"+instance(n)+"/state", body, nil); err != nil {
		return fmt.Errorf("node %s: %s: %w", n.Name, verb, err)
	}
	return nil
}

// Start boots the node and waits for systemd.
func (p *Provider) Start(ctx context.Context, n providers.Node) error {
	if err := p.action(ctx, n, "start", false); err != nil {
		return err
	}
	return providers.WaitSystemd(ctx, p, n, 200*time.Millisecond)
}

func (p *Provider) Stop(ctx context.Context, n providers.Node) error {
	return p.action(ctx, n, "stop", false)
}

func (p *Provider) Kill(ctx context.Context, n providers.Node) error {
	return p.action(ctx, n, "stop", true)
}

func (p *Provider) Pause(ctx context.Context, n providers.Node) error {
	return p.action(ctx, n, "freeze", false)
}

func (p *Provider) Resume(ctx context.Context, n providers.Node) error {
	return p.action(ctx, n, "unfreeze", false)
}

// checkOwner refuses an instance this lab did not make: another lab's
// (user.lab.owner names its state folder) or one lab never made. It
// returns the instance's configuration (nil: there is none).
func (p *Provider) checkOwner(ctx context.Context, n providers.Node) (map[string]string, error) {
	var in struct {
		Config map[string]string `json:"config"`
	}
	err := p.c.query(ctx, "GET", "/1.0/instances/"+instance(n), nil, &in)
	if notFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", n.Name, err)
	}
	if err := p.owns(n, in.Config); err != nil {
		return nil, err
	}
	return in.Config, nil
}

// owns refuses an instance, by its configuration, that this lab did not
// make for n.
func (p *Provider) owns(n providers.Node, config map[string]string) error {
	if owner := config["user.lab.owner"]; owner != n.Owner || config["user.lab.node"] != n.Name {
		return &providers.OwnerError{Node: n.Name, ID: p.c.where(instance(n)), Owner: owner}
	}
	return nil
}

// Destroy removes the instance, running or not, and the image it was made
// from once no instance of any lab uses it.
func (p *Provider) Destroy(ctx context.Context, n providers.Node) error {
	config, err := p.checkOwner(ctx, n)
	if err != nil || config == nil {
		return err
	}
	if _, err := p.c.run(ctx, nil, "delete", "--force", p.c.where(instance(n))); err != nil && !notFound(err) {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	if key := config["user.lab.image"]; key != "" {
		if err := p.dropImage(ctx, key); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
	}
	return nil
}

// State is the instance's, as LXD reports it.
func (p *Provider) State(ctx context.Context, n providers.Node) (providers.State, error) {
	var st struct {
		Status string `json:"status"`
	}
	err := p.c.query(ctx, "GET", "/1.0/instances/"+instance(n)+"/state", nil, &st)
	if notFound(err) {
		return providers.Absent, nil
	}
	if err != nil {
		return providers.Unknown, fmt.Errorf("node %s: %w", n.Name, err)
	}
	switch st.Status {
	case "Running":
		return providers.Running, nil
	case "Stopped":
		return providers.Stopped, nil
	case "Frozen":
		return providers.Paused, nil
	}
	return providers.Unknown, nil
}

// Exec runs cmd in the node through lxc exec; its exit code is the
// command's.
func (p *Provider) Exec(ctx context.Context, n providers.Node, cmd []string, eio providers.ExecIO) (int, error) {
	args := []string{"exec", p.c.where(instance(n)), "--force-noninteractive"}
	if eio.Dir != "" {
		args = append(args, "--cwd", eio.Dir)
	}
	for _, e := range append(append([]string{}, providers.BaseEnv...), eio.Env...) {
		args = append(args, "--env", e)
	}
	args = append(append(args, "--"), cmd...)
	return p.c.exec(ctx, args, eio)
}

func (p *Provider) CopyIn(ctx context.Context, n providers.Node, src io.Reader, dst string, mode fs.FileMode) error {
	return providers.CopyInWithExec(ctx, p, n, src, dst, mode)
}

func (p *Provider) Shell(ctx context.Context, n providers.Node, cmd []string) error {
	if len(cmd) == 0 {
		cmd = []string{"/bin/bash", "-l"}
	}
	code, err := p.c.exec(ctx, append([]string{"exec", p.c.where(instance(n)), "--"}, cmd...),
		providers.ExecIO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
	if err == nil && code != 0 {
		return &providers.ExitError{Code: code}
	}
	return err
}
