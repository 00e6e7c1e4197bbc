package network

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/labctl/lab/internal/spawn"
)

// Delay is an impairment of the traffic sent to a node: each frame is held
// Delay ± Jitter, a share Loss (0 to 1) is dropped, and Rate (bits per
// second, 0: none) limits the throughput.
type Delay struct {
	Delay, Jitter time.Duration
	Loss          float64
	Rate          int64
}

// Args renders the delay for the delay line's command line.
func (d Delay) Args() []string {
	return []string{"--delay", d.Delay.String(), "--jitter", d.Jitter.String(), "--loss", strconv.FormatFloat(d.Loss, 'f', -1, 64), "--rate", strconv.FormatInt(d.Rate, 10)}
}

// delayMark marks the frames a delay line sends on, so the egress rule that
// diverted them lets them through.
const delayMark = 0x1ab5

// TapName is the tap of a delay line for a node's port (v…-0 → d…-0).
func TapName(port string) string { return "d" + strings.TrimPrefix(port, "v") }

// DelayTable is the netdev table of a lab's delay rules.
func DelayTable(lab string) string { return Table(lab) + ".delay" }

// delayChain is the egress chain of one fault on one port.
func delayChain(id, port string) string {
	return id + "_" + strings.ReplaceAll(port, "-", "_")
}

// The kernel here may have no netem (sch_netem is often not built into
// small cloud and CI kernels), so lab brings its own delay line: an nft
// egress rule on the node's port diverts each frame to a tap of a small
// process (lab itself), which holds the frame as long as the fault says and
// sends it on to the port through a packet socket, marked so the rule lets
// it pass. It works the same for containers (veth) and VMs (tap).

// StartDelayLine starts the delay line of fault id for a node's ports, in a
// session of its own (it outlives the lab command, like a port forward),
// and diverts the ports' egress to it once its taps are up. from limits it
// to frames from those addresses (all when empty).
func StartDelayLine(ctx context.Context, lab, id string, ports []string, from []netip.Addr, d Delay, logDir string) (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return 0, err
	}
	logf, err := os.OpenFile(filepath.Join(logDir, "fault-"+id+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	args := append([]string{delayTag(lab, id), "__delay-line"}, d.Args()...)
	for _, p := range ports {
		args = append(args, "--port", p)
	}
	cmd := &exec.Cmd{Path: exe, Args: args, Stdout: logf, Stderr: logf, SysProcAttr: &syscall.SysProcAttr{Setsid: true}}
	if err := spawn.Daemon(cmd.Start); err != nil {
		return 0, err
	}
	pid := cmd.Process.Pid
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	if err := waitTaps(ports, exited); err != nil {
		_ = cmd.Process.Kill()
		b, _ := os.ReadFile(logf.Name())
		return 0, fmt.Errorf("delay line: %w: %s", err, bytes.TrimSpace(b))
	}
	if err := divert(ctx, lab, id, ports, from); err != nil {
		_ = cmd.Process.Kill()
		return 0, err
	}
	return pid, nil
}

func delayTag(lab, id string) string { return "lab-delay:" + lab + ":" + id }

func waitTaps(ports []string, exited chan struct{}) error {
	deadline := time.After(3 * time.Second)
	for {
		up := true
		for _, p := range ports {
			up = up && LinkExists(TapName(p))
		}
		if up {
			return nil
		}
		select {
		case <-exited:
			return errors.New("exited")
		case <-deadline:
			return errors.New("its taps did not appear")
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// divert adds, for each port, the egress chain that sends frames to the tap.
func divert(ctx context.Context, lab, id string, ports []string, from []netip.Addr) error {
	var b strings.Builder
	t := DelayTable(lab)
	fmt.Fprintf(&b, "table netdev %s {}\n", t)
	matches := []string{""}
	if len(from) > 0 {
		matches = nil
		for _, fam := range []string{"ip", "ip6"} {
			if as := family(from, fam); len(as) > 0 {
				matches = append(matches, fam+" saddr "+addrSet(as)+" ")
			}
		}
	}
	for _, p := range ports {
		fmt.Fprintf(&b, "add chain netdev %s %s { type filter hook egress device %q priority 0; policy accept; }\n", t, delayChain(id, p), p)
		fmt.Fprintf(&b, "add rule netdev %s %s meta mark 0x%x accept\n", t, delayChain(id, p), delayMark)
		for _, match := range matches {
			fmt.Fprintf(&b, "add rule netdev %s %s %sfwd to %q\n", t, delayChain(id, p), match, TapName(p))
		}
	}
	return nftScript(ctx, b.String())
}

// StopDelayLine takes fault id's rules off the ports, then ends its
// process (if pid still is it).
func StopDelayLine(ctx context.Context, lab, id string, ports []string, pid int) error {
	t := DelayTable(lab)
	var errs []error
	for _, p := range ports {
		if _, err := run(ctx, "nft", "list", "chain", "netdev", t, delayChain(id, p)); err != nil {
			continue
		}
		if _, err := run(ctx, "nft", "delete", "chain", "netdev", t, delayChain(id, p)); err != nil {
			errs = append(errs, err)
		}
	}
	if pid > 0 && delayAlive(pid, lab, id) {
		stopPID(pid)
	}
	return errors.Join(errs...)
}

func delayAlive(pid int, lab, id string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && spawn.Alive(pid) && bytes.HasPrefix(b, []byte(delayTag(lab, id)+"\x00"))
}

// DelayPIDs lists the delay lines of a lab (for leak checks and cleanup).
func DelayPIDs(lab string) []int { return taggedProcs("lab-delay:")[lab] }

// RemoveDelays deletes the lab's delay table and ends its delay lines.
func RemoveDelays(ctx context.Context, lab string) error {
	return removeTables(ctx, lab, "netdev "+DelayTable(lab))
}

// RunDelayLine is the delay line's process: for each port, a tap that
// receives the diverted frames and a packet socket that sends them on after
// the delay. It runs until ctx ends.
func RunDelayLine(ctx context.Context, ports []string, d Delay) error {
	errc := make(chan error, len(ports))
	for _, p := range ports {
		tap, err := openTap(TapName(p))
		if err != nil {
			return fmt.Errorf("tap for %s: %w", p, err)
		}
		out, err := packetSocket(p)
		if err != nil {
			return fmt.Errorf("socket on %s: %w", p, err)
		}
		go func() { errc <- pump(ctx, tap, out, d) }()
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return err
	}
}

func openTap(name string) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if out, err := exec.Command("ip", "link", "set", name, "up").CombinedOutput(); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("ip link set %s up: %v: %s", name, err, out)
	}
	return os.NewFile(uintptr(fd), name), nil
}

// packetSocket sends frames out of a port, marked, past its qdisc.
func packetSocket(port string) (int, error) {
	ifi, err := net.InterfaceByName(port)
	if err != nil {
		return -1, err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, delayMark); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifi.Index}); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

type held struct {
	due   time.Time
	frame []byte
}

// pump holds each frame read from the tap until it is due, then sends it.
func pump(ctx context.Context, tap *os.File, out int, d Delay) error {
	queue := make(chan held, 8192)
	go func() {
		for h := range queue {
			if wait := time.Until(h.due); wait > 0 {
				time.Sleep(wait)
			}
			_, _ = unix.Write(out, h.frame)
		}
	}()
	var last time.Time
	buf := make([]byte, 65536)
	for ctx.Err() == nil {
		n, err := tap.Read(buf)
		if err != nil {
			return err
		}
		if d.Loss > 0 && rand.Float64() < d.Loss {
			continue
		}
		due := time.Now().Add(d.Delay)
		if d.Jitter > 0 {
			due = due.Add(time.Duration((rand.Float64()*2 - 1) * float64(d.Jitter)))
		}
		if d.Rate > 0 && !last.IsZero() {
			// The link sends one frame at a time: this one after the last.
			if next := last.Add(time.Duration(int64(n) * 8 * int64(time.Second) / d.Rate)); due.Before(next) {
				due = next
			}
		}
		if due.Before(last) {
			due = last // frames leave in the order they came
		}
		last = due
		select {
		case queue <- held{due, append([]byte(nil), buf[:n]...)}:
		default: // a full queue drops, as a full link does
		}
	}
	return nil
}
