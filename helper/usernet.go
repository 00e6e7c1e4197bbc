package helper

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"

	"github.com/labctl/lab/internal/fsx"
)

// UsernetPath is liblxc's list of the bridges each user's unprivileged
// containers may have veths on (lxc-user-nic reads it).
const UsernetPath = "/etc/lxc/lxc-usernet"

// UsernetLock serialises the helper's edits of the list.
var UsernetLock = "/run/lock/lab-usernet.lock"

// NICs is how many veths a user's nodes may have on one lab bridge.
const NICs = 1024

// usernetLine is the line that lets user's nodes on bridge.
func usernetLine(user, bridge string) string {
	return fmt.Sprintf("%s veth %s %d", user, bridge, NICs)
}

// AllowNICs adds user's line for bridge to the list, once.
func AllowNICs(path, user, bridge string) error {
	return editUsernet(path, func(lines []string) []string {
		want := usernetLine(user, bridge)
		for _, l := range lines {
			if strings.TrimSpace(l) == want {
				return lines
			}
		}
		return append(lines, want)
	})
}

// DenyNICs removes user's line for bridge from the list.
func DenyNICs(path, user, bridge string) error {
	return editUsernet(path, func(lines []string) []string {
		want := usernetLine(user, bridge)
		var out []string
		for _, l := range lines {
			if strings.TrimSpace(l) != want {
				out = append(out, l)
			}
		}
		return out
	})
}

// editUsernet rewrites the list under a lock (every helper run edits it
// the same way), atomically; a list left empty is removed (no list is an
// empty one to lxc-user-nic).
func editUsernet(path string, edit func([]string) []string) error {
	lock, err := os.OpenFile(UsernetLock, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	f, err := os.Open(path)
	var content []byte
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("%s: %w", path, err)
	default:
		content, err = io.ReadAll(io.LimitReader(f, MaxRequest))
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	lines := strings.Split(strings.TrimRight(string(content), "\n"), "\n")
	if len(content) == 0 {
		lines = nil
	}
	out := edit(lines)
	text := strings.Join(out, "\n")
	if len(out) > 0 {
		text += "\n"
	}
	if text == string(content) {
		return nil
	}
	if text == "" {
		return os.Remove(path)
	}
	return fsx.WriteAtomic(path, []byte(text), 0o644)
}
