package lxc

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/labctl/lab/providers"
)

// The config's header records whose node a container is, so that lab never
// adopts or removes a container it did not make for this lab, and can find
// a lab's containers when its state folder is gone.
const (
	headLab   = "# lab-name: "
	headNode  = "# lab-node: "
	headOwner = "# lab-owner: "
	headOld   = "# Written by lab for node "
)

// header reads the lab, node and owner a container's config records. ok is
// false when the config was not written by lab.
func header(path string) (found providers.Found, ok bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return found, false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for i := 0; i < 8 && sc.Scan(); i++ {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, headLab):
			found.Lab, ok = strings.TrimPrefix(line, headLab), true
		case strings.HasPrefix(line, headNode):
			found.Node = strings.TrimPrefix(line, headNode)
		case strings.HasPrefix(line, headOwner):
			found.Owner = strings.TrimPrefix(line, headOwner)
		case strings.HasPrefix(line, headOld) && !ok:
			// Before owners were recorded: "... for node N of lab L. ..."
			rest := strings.TrimPrefix(line, headOld)
			if node, lab, cut := strings.Cut(rest, " of lab "); cut {
				found.Node = node
				found.Lab, _, _ = strings.Cut(lab, ". ")
				ok = true
			}
		}
	}
	return found, ok, sc.Err()
}

// checkOwner refuses a container that exists but is not this lab's.
func (p *Provider) checkOwner(n providers.Node) error {
	h, ok, err := header(filepath.Join(p.dir(n), "config"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !ok || h.Lab != n.Lab || (h.Owner != "" && n.Owner != "" && h.Owner != n.Owner) {
		return &providers.OwnerError{Node: n.Name, ID: n.ID, Owner: h.Owner}
	}
	return nil
}

// List returns every container in the LXC path that lab made.
func (p *Provider) List(ctx context.Context) ([]providers.Found, error) {
	entries, err := os.ReadDir(p.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []providers.Found
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		h, ok, err := header(filepath.Join(p.path, e.Name(), "config"))
		if err != nil || !ok {
			continue
		}
		h.Provider, h.ID = p.Name(), e.Name()
		h.State, _ = p.State(ctx, providers.Node{ID: e.Name(), Name: h.Node})
		out = append(out, h)
	}
	return out, nil
}
