package network

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/labctl/lab/internal/spawn"
)

// Forward is a port forward from the host's loopback to a node: socat
// listening on Address:Host and connecting to Target for each client.
type Forward struct {
	Lab     string
	Address string
	Host    int
	Target  string // node address:port
}

func (f Forward) tag() string { return "lab-forward:" + f.Lab }

func (f Forward) listen() string {
	return fmt.Sprintf("TCP-LISTEN:%d,bind=%s,reuseaddr,fork", f.Host, f.Address)
}

// PortFree tells whether a host port can be listened on.
func PortFree(address string, port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort(address, strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return l.Close()
}

// StartForward starts socat for f in a session of its own, so it outlives
// this lab command, and returns its PID. Its argv[0] names the lab
// ("lab-forward:NAME") so it can be found and told apart from anyone else's.
func StartForward(logDir string, f Forward) (int, error) {
	socat, err := exec.LookPath("socat")
	if err != nil {
		return 0, fmt.Errorf("port forwards need socat (Debian package socat)")
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return 0, err
	}
	logf, err := os.OpenFile(filepath.Join(logDir, fmt.Sprintf("forward-%d.log", f.Host)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	cmd := &exec.Cmd{Path: socat, Args: []string{f.tag(), f.listen(), "TCP:" + f.Target + ",connect-timeout=5"}, Stdout: logf, Stderr: logf}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := spawn.Daemon(cmd.Start); err != nil {
		return 0, err
	}
	pid := cmd.Process.Pid
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }() // reaps it if it dies while we run
	// socat fails at once when it cannot listen; give it a moment to say so.
	// (Its /proc cmdline is not socat's until execve is done: wait on the
	// process, not on /proc.)
	deadline := time.After(2 * time.Second)
	for {
		select {
		case <-exited:
			b, _ := os.ReadFile(logf.Name())
			return 0, fmt.Errorf("socat for %s:%d exited: %s", f.Address, f.Host, bytes.TrimSpace(b))
		case <-deadline:
			_ = cmd.Process.Kill()
			return 0, fmt.Errorf("socat for %s:%d did not start listening", f.Address, f.Host)
		case <-time.After(20 * time.Millisecond):
		}
		if PortFree(f.Address, f.Host) != nil && ForwardAlive(pid, f) {
			return pid, nil
		}
	}
}

// ForwardAlive tells whether pid is still the socat serving f.
func ForwardAlive(pid int, f Forward) bool {
	if pid <= 0 || !spawn.Alive(pid) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := bytes.Split(bytes.TrimRight(b, "\x00"), []byte{0})
	return len(args) >= 3 && string(args[0]) == f.tag() && string(args[1]) == f.listen() && string(args[2]) == "TCP:"+f.Target+",connect-timeout=5"
}

// StopForward ends the socat of f, if pid still is it.
func StopForward(pid int, f Forward) {
	if ForwardAlive(pid, f) {
		stopPID(pid)
	}
}

// ForwardPIDs lists the socat processes of a lab (for leak checks).
func ForwardPIDs(lab string) []int { return taggedProcs("lab-forward:")[lab] }
