// Command lab-net is the setuid helper of lab without root (#20): root's
// hand for what a member of the lab group may ask of the host's network
// for a lab of its own, checked by package helper. lab host setup installs
// it root:lab, mode 4750; it reads one JSON request on its standard input:
//
//	up     make the lab's network INDEX (bridge lab-LAB-INDEX, its
//	       addresses, the drop rules that keep its traffic in, dnsmasq)
//	       and serve its hosts; allow the user's nodes on the bridge
//	       (/etc/lxc/lxc-usernet, for liblxc's lxc-user-nic)
//	hosts  replace the names the network's dnsmasq serves
//	down   take the network down; the lab's last one forgets its owner
//	policy put the lab's firewall, anti-spoofing and partitions in force
//	clear  lift them, and end its delay lines
//	delay  start a fault's delay line on a node's ports (prints its PID);
//	       undelay ends it
//	tap    make a VM node's ports: tap devices owned by the user on the
//	       lab's network INDEX (its QEMU opens them); untap removes them
//
// It trusts nothing of its caller's environment: it runs with a fixed PATH
// from /, and never takes a path, a name of a bridge or a command.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/labctl/lab/helper"
	"github.com/labctl/lab/network"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "__delay-line" {
		if err := delayLine(os.Args[2:]); err != nil {
			fmt.Fprintf(os.Stderr, "lab-net: delay line: %v\n", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "lab-net: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	os.Clearenv()
	_ = os.Setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
	syscall.Umask(0o022)
	if err := os.Chdir("/"); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("not setuid root: install it with lab host setup")
	}
	uid := os.Getuid()
	u, err := caller(uid)
	if err != nil {
		return err
	}
	// Wholly root from here on: the tools it runs (nft, ip, dnsmasq) act
	// as for root, not as a setuid caller's child (nft refuses that).
	if err := syscall.Setresgid(0, 0, 0); err != nil {
		return err
	}
	if err := syscall.Setresuid(0, 0, 0); err != nil {
		return err
	}
	req, err := helper.Decode(os.Stdin)
	if err != nil {
		return err
	}
	n, err := req.Net()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	owners := helper.Owners{Dir: filepath.Join(network.RunDir, "helper"), Exists: labExists(ctx)}
	m := &network.Manager{Owner: "uid " + strconv.Itoa(uid)}
	switch req.Op {
	case "up":
		return up(ctx, owners, m, u, req, n)
	case "hosts":
		if owners.Owner(req.Lab) != uid || !network.LinkExists(n.Bridge) {
			return fmt.Errorf("lab %s: network %d is not one of yours that is up", req.Lab, req.Index)
		}
		return m.SetHosts(n.Bridge, req.HostsFile())
	case "policy":
		if owners.Owner(req.Lab) != uid {
			return fmt.Errorf("lab %s: not one of yours that is up", req.Lab)
		}
		if err := helper.CheckPolicy(req.Policy, req.Lab, labNets(req.Lab)); err != nil {
			return err
		}
		return network.ApplyPolicy(ctx, *req.Policy)
	case "clear":
		if owners.Owner(req.Lab) != uid {
			return owners.Check(req.Lab, uid) // nobody's: nothing to lift
		}
		return errors.Join(network.RemoveLab(ctx, req.Lab), os.RemoveAll(delayLogs(req.Lab)))
	case "delay", "undelay":
		if owners.Owner(req.Lab) != uid {
			return fmt.Errorf("lab %s: not one of yours that is up", req.Lab)
		}
		if err := helper.CheckDelay(req, labNets(req.Lab)); err != nil {
			return err
		}
		return delay(ctx, req)
	case "tap", "untap": // untap: only the caller's own taps, on no other bridge
		if req.Op == "tap" && owners.Owner(req.Lab) != uid {
			return fmt.Errorf("lab %s: not one of yours that is up", req.Lab)
		}
		return taps(ctx, req, n.Bridge, uid)
	default:
		return down(ctx, owners, m, u, req.Lab, n.Bridge)
	}
}

// caller is the user that ran the helper: root, or a member of the lab
// group (the file's mode says so too; this holds if it is installed wrong).
func caller(uid int) (*user.User, error) {
	u, err := user.LookupId(strconv.Itoa(uid))
	if err != nil {
		return nil, fmt.Errorf("uid %d: %w", uid, err)
	}
	if uid == 0 {
		return u, nil
	}
	g, err := user.LookupGroup("lab")
	if err != nil {
		return nil, errors.New("no group lab: run lab host setup --user first")
	}
	gids, err := u.GroupIds()
	if err != nil || !slices.Contains(gids, g.Gid) {
		return nil, fmt.Errorf("user %s is not in the group lab (lab host setup --user %s)", u.Username, u.Username)
	}
	return u, nil
}

func up(ctx context.Context, owners helper.Owners, m *network.Manager, u *user.User, req *helper.Request, n network.Net) error {
	uid, _ := strconv.Atoi(u.Uid)
	first := owners.Owner(req.Lab) != uid
	if err := owners.Claim(req.Lab, uid); err != nil {
		return err
	}
	if err := m.Ensure(ctx, req.Lab, n); err != nil {
		if first { // what it made goes, and the lab is nobody's again
			err = errors.Join(err, m.Remove(ctx, req.Lab, n.Bridge), owners.Release(req.Lab, uid))
		}
		return err
	}
	if err := m.SetHosts(n.Bridge, req.HostsFile()); err != nil {
		return err
	}
	return helper.AllowNICs(helper.UsernetPath, u.Username, n.Bridge)
}

func down(ctx context.Context, owners helper.Owners, m *network.Manager, u *user.User, lab, bridge string) error {
	uid, _ := strconv.Atoi(u.Uid)
	if owners.Owner(lab) != uid {
		if err := owners.Check(lab, uid); err != nil {
			return err
		}
		return nil // nobody's: nothing of it is up
	}
	for _, t := range network.TapsOn(bridge) { // its VM nodes' ports
		if owner, _ := network.TapOwner(t); owner == uid {
			if err := network.DelTap(ctx, t); err != nil {
				return err
			}
		}
	}
	if err := m.Remove(ctx, lab, bridge); err != nil {
		return err
	}
	if err := helper.DenyNICs(helper.UsernetPath, u.Username, bridge); err != nil {
		return err
	}
	for _, b := range network.FindBridges() {
		if b.Lab == lab {
			return nil // the lab has networks left: still the user's
		}
	}
	if err := network.RemoveLab(ctx, lab); err != nil { // its firewall, if it had one
		return err
	}
	return owners.Release(lab, uid)
}

// labExists tells whether the host has anything of a lab: a bridge or its
// files, or a table.
func labExists(ctx context.Context) func(string) bool {
	return func(lab string) bool {
		for _, b := range network.FindBridges() {
			if b.Lab == lab {
				return true
			}
		}
		return slices.Contains(network.FindTables(ctx), lab)
	}
}

// delayLogs is where a lab's delay lines log.
func delayLogs(lab string) string { return filepath.Join(network.RunDir, "delay-"+lab) }

// delay starts a fault's delay line (printing its PID) or ends it.
func delay(ctx context.Context, req *helper.Request) error {
	if req.Op == "undelay" {
		err := network.StopDelayLine(ctx, req.Lab, req.Fault, req.Ports, req.PID) // ends PID only if it is that line
		_ = os.Remove(filepath.Join(delayLogs(req.Lab), "fault-"+req.Fault+".log"))
		_ = os.Remove(delayLogs(req.Lab)) // when it was the last
		return err
	}
	pid, err := network.StartDelayLine(ctx, req.Lab, req.Fault, req.Ports, req.From, *req.Delay, delayLogs(req.Lab))
	if err != nil {
		return err
	}
	fmt.Println(pid)
	return nil
}

// taps makes (tap) or removes (untap) a VM node's ports.
func taps(ctx context.Context, req *helper.Request, bridge string, uid int) error {
	nets := labNets(req.Lab)
	if req.Op == "untap" {
		bridge = ""
	}
	if err := helper.CheckTaps(req, bridge, uid, nets); err != nil {
		return err
	}
	for _, p := range req.Ports {
		var err error
		if req.Op == "tap" {
			err = network.AddTap(ctx, p, bridge, uid)
		} else {
			err = network.DelTap(ctx, p)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// delayLine is a delay line's own process, started by delay: root's only
// (a user running the helper with these arguments is refused).
func delayLine(args []string) error {
	if os.Getuid() != 0 {
		return errors.New("a delay line is started by the helper, not by hand")
	}
	fs := flag.NewFlagSet("__delay-line", flag.ContinueOnError)
	var d network.Delay
	var ports multi
	fs.DurationVar(&d.Delay, "delay", 0, "")
	fs.DurationVar(&d.Jitter, "jitter", 0, "")
	fs.Float64Var(&d.Loss, "loss", 0, "")
	fs.Int64Var(&d.Rate, "rate", 0, "")
	fs.Var(&ports, "port", "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return network.RunDelayLine(ctx, ports, d)
}

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

// labNets are the lab's bridges on the host, with their subnets, and how
// to tell which bridge a port is on.
func labNets(lab string) helper.LabNets {
	nets := helper.LabNets{Subnets: map[string][]netip.Prefix{}, Exists: network.LinkExists, TapOwner: network.TapOwner, Master: func(port string) string {
		if strings.ContainsAny(port, "/.") || port == "" {
			return ""
		}
		target, err := os.Readlink(filepath.Join("/sys/class/net", port, "master"))
		if err != nil {
			return ""
		}
		return filepath.Base(target)
	}}
	for _, b := range network.FindBridges() {
		if b.Lab != lab {
			continue
		}
		ifc, err := net.InterfaceByName(b.Bridge)
		if err != nil {
			continue
		}
		addrs, _ := ifc.Addrs()
		var ps []netip.Prefix
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && !p.Addr().IsLinkLocalUnicast() {
				ps = append(ps, p.Masked())
			}
		}
		nets.Subnets[b.Bridge] = ps
	}
	return nets
}
