package helper

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/labctl/lab/network"
)

// Client is the network of a lab run by a user that is not root: what
// changes the host goes through the setuid helper at Path, what only
// looks (a subnet's routes, a bridge's owner) runs in lab.
type Client struct {
	Path string
	look *network.Manager
}

// NewClient returns the client of the user lab runs as, through the
// helper installed at path.
func NewClient(path string) *Client {
	return &Client{Path: path, look: &network.Manager{Owner: "uid " + strconv.Itoa(os.Getuid())}}
}

// Ensure makes the network (op up) and allows the user's nodes on it.
func (c *Client) Ensure(ctx context.Context, lab string, n network.Net) error {
	idx, err := index(lab, n.Bridge)
	if err != nil {
		return err
	}
	req := Request{Op: "up", Lab: lab, Index: idx, Subnet: n.Subnet.String(), Domain: n.Domain}
	if n.Subnet6.IsValid() {
		req.Subnet6 = n.Subnet6.String()
	}
	return c.call(ctx, req)
}

// SetHosts replaces the names the network's dnsmasq serves (lines of
// "ADDRESS NAME…").
func (c *Client) SetHosts(bridge, lines string) error {
	lab, idx, err := parseBridge(bridge)
	if err != nil {
		return err
	}
	req := Request{Op: "hosts", Lab: lab, Index: idx}
	for _, l := range strings.Split(lines, "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 {
			req.Hosts = append(req.Hosts, Host{Addr: f[0], Names: f[1:]})
		}
	}
	return c.call(context.Background(), req)
}

// Remove takes the network down (op down).
func (c *Client) Remove(ctx context.Context, lab, bridge string) error {
	idx, err := index(lab, bridge)
	if err != nil {
		return err
	}
	return c.call(ctx, Request{Op: "down", Lab: lab, Index: idx})
}

// CheckFree says whether a subnet is free (read only).
func (c *Client) CheckFree(ctx context.Context, subnet netip.Prefix, bridge string) error {
	return c.look.CheckFree(ctx, subnet, bridge)
}

// Preflight says why a network cannot be made (read only).
func (c *Client) Preflight(ctx context.Context, lab string, n network.Net) error {
	return c.look.Preflight(ctx, lab, n)
}

// ApplyPolicy puts the lab's firewall, anti-spoofing and partitions in
// force (op policy).
func (c *Client) ApplyPolicy(ctx context.Context, p network.Policy) error {
	return c.call(ctx, Request{Op: "policy", Lab: p.Lab, Policy: &p})
}

// RemoveLab lifts them (op clear).
func (c *Client) RemoveLab(ctx context.Context, lab string) error {
	return c.call(ctx, Request{Op: "clear", Lab: lab})
}

// StartDelay starts a fault's delay line on a node's ports (op delay):
// its PID.
func (c *Client) StartDelay(ctx context.Context, lab, id string, ports []string, from []netip.Addr, d network.Delay, _ string) (int, error) {
	out, err := c.run(ctx, Request{Op: "delay", Lab: lab, Fault: id, Ports: ports, From: from, Delay: &d})
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		return 0, fmt.Errorf("fault %s: the helper said %q, not a PID", id, out)
	}
	return pid, nil
}

// StopDelay ends it (op undelay).
func (c *Client) StopDelay(ctx context.Context, lab, id string, ports []string, pid int) error {
	_, err := c.run(ctx, Request{Op: "undelay", Lab: lab, Fault: id, Ports: ports, PID: pid})
	return err
}

// AddTaps makes a VM node's ports on one of its lab's bridges: tap
// devices the user owns (op tap).
func (c *Client) AddTaps(ctx context.Context, lab, bridge string, ports []string) error {
	idx, err := index(lab, bridge)
	if err != nil {
		return err
	}
	return c.call(ctx, Request{Op: "tap", Lab: lab, Index: idx, Ports: ports})
}

// DelTaps removes them (op untap).
func (c *Client) DelTaps(ctx context.Context, lab string, ports []string) error {
	return c.call(ctx, Request{Op: "untap", Lab: lab, Ports: ports})
}

// call runs the helper with one request.
func (c *Client) call(ctx context.Context, req Request) error {
	_, err := c.run(ctx, req)
	return err
}

// run runs the helper with one request: what it printed.
func (c *Client) run(ctx context.Context, req Request) (string, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, c.Path)
	cmd.Stdin = bytes.NewReader(b)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) {
		return "", fmt.Errorf("network helper %s: %w: run sudo lab host setup --user $USER", c.Path, err)
	}
	if err != nil {
		msg := strings.TrimSpace(stderr.String() + stdout.String())
		if msg == "" {
			msg = err.Error()
		}
		switch req.Op {
		case "policy", "clear":
			return "", fmt.Errorf("firewall of lab %s: %s", req.Lab, msg)
		case "delay", "undelay":
			return "", fmt.Errorf("fault %s: delay line: %s", req.Fault, msg)
		case "tap", "untap":
			return "", fmt.Errorf("ports %s: %s", strings.Join(req.Ports, ", "), msg)
		}
		return "", fmt.Errorf("network %d of lab %s: %s", req.Index, req.Lab, msg)
	}
	return stdout.String(), nil
}

// index is the index of a lab's bridge (lab-LAB-N).
func index(lab, bridge string) (int, error) {
	l, idx, err := parseBridge(bridge)
	if err == nil && l != lab {
		err = fmt.Errorf("bridge %s is not lab %s's", bridge, lab)
	}
	return idx, err
}

func parseBridge(bridge string) (string, int, error) {
	lab, idx, ok := network.ParseBridge(bridge)
	if !ok {
		return "", 0, fmt.Errorf("bridge %s: not a lab's bridge (lab-LAB-N)", bridge)
	}
	return lab, idx, nil
}
