package helper

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// MaxNets bounds the networks one user may have at once.
const MaxNets = 32

// Owners records which user made each bridge the helper made: a file
// BRIDGE.uid in Dir (root's, under /run: a reboot forgets the bridges too).
type Owners struct {
	Dir string
	// Exists tells whether an interface of that name is on the host.
	Exists func(name string) bool
}

func (o Owners) path(bridge string) string { return filepath.Join(o.Dir, bridge+".uid") }

// Owner is the uid that made bridge through the helper, or -1.
func (o Owners) Owner(bridge string) int {
	b, err := os.ReadFile(o.path(bridge))
	if err != nil {
		return -1
	}
	uid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return -1
	}
	return uid
}

// Check says whether uid may change bridge: it made it, or nobody has.
func (o Owners) Check(bridge string, uid int) error {
	switch owner := o.Owner(bridge); {
	case owner == uid:
		return nil
	case owner >= 0:
		return fmt.Errorf("bridge %s: another user's (uid %d)", bridge, owner)
	case o.Exists(bridge):
		return fmt.Errorf("bridge %s: not made through the helper (root's lab, or the host's own)", bridge)
	}
	return nil
}

// Claim records uid as bridge's maker, unless it is another's, or not the
// helper's, or uid has MaxNets networks already.
func (o Owners) Claim(bridge string, uid int) error {
	if err := o.Check(bridge, uid); err != nil {
		return err
	}
	if o.Owner(bridge) == uid {
		return nil
	}
	if n := o.count(uid); n >= MaxNets {
		return fmt.Errorf("uid %d has %d networks, the most a user may have", uid, n)
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(o.path(bridge), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		return o.Check(bridge, uid) // another request won the race
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "%d\n", uid)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Release forgets bridge's maker, once its bridge is gone.
func (o Owners) Release(bridge string, uid int) error {
	if err := o.Check(bridge, uid); err != nil {
		return err
	}
	if err := os.Remove(o.path(bridge)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func (o Owners) count(uid int) int {
	entries, _ := os.ReadDir(o.Dir)
	n := 0
	for _, e := range entries {
		if b, ok := strings.CutSuffix(e.Name(), ".uid"); ok && o.Owner(b) == uid {
			n++
		}
	}
	return n
}
