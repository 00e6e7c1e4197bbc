package helper

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// MaxLabs bounds the labs one user may have at once.
const MaxLabs = 32

// Owners records which user made each lab whose networks the helper made:
// a file LAB.uid in Dir (root's, under /run: a reboot forgets the bridges
// too). A lab, not a bridge, is what a user owns: its bridges share one
// nftables table, and a bridge of someone else's lab of the same name
// would share it too.
type Owners struct {
	Dir string
	// Exists tells whether the host has anything of a lab of that name (a
	// bridge lab-LAB-…, a table lab_LAB).
	Exists func(lab string) bool
}

func (o Owners) path(lab string) string { return filepath.Join(o.Dir, lab+".uid") }

// Owner is the uid that made lab's networks through the helper, or -1.
func (o Owners) Owner(lab string) int {
	b, err := os.ReadFile(o.path(lab))
	if err != nil {
		return -1
	}
	uid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return -1
	}
	return uid
}

// Check says whether uid may change lab's networks: it made them, or
// nobody has.
func (o Owners) Check(lab string, uid int) error {
	switch owner := o.Owner(lab); {
	case owner == uid:
		return nil
	case owner >= 0:
		return fmt.Errorf("lab %s: another user's (uid %d)", lab, owner)
	case o.Exists(lab):
		return fmt.Errorf("lab %s: its networks were not made through the helper (a lab of root's)", lab)
	}
	return nil
}

// Claim records uid as lab's maker, unless it is another's, or not the
// helper's, or uid has MaxLabs labs already.
func (o Owners) Claim(lab string, uid int) error {
	if err := o.Check(lab, uid); err != nil {
		return err
	}
	if o.Owner(lab) == uid {
		return nil
	}
	if n := o.count(uid); n >= MaxLabs {
		return fmt.Errorf("uid %d has %d labs, the most a user may have", uid, n)
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(o.path(lab), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		return o.Check(lab, uid) // another request won the race
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

// Release forgets lab's maker, once its networks are gone.
func (o Owners) Release(lab string, uid int) error {
	if err := o.Check(lab, uid); err != nil {
		return err
	}
	if err := os.Remove(o.path(lab)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	_ = os.Remove(o.Dir) // the last record takes the folder with it
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
