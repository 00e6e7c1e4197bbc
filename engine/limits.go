package engine

import (
	"fmt"
	"os"
	"strings"

	"github.com/labctl/lab/host"
	"github.com/labctl/lab/providers"
)

// LimitsError names each host limit too low for the lab, when lab may
// not raise them (not root): nothing was made.
type LimitsError struct {
	Containers int
	Low        []host.Limit
}

func (e *LimitsError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "this machine's kernel limits are too low for %d containers at once (as root, lab up raises them; or lab host-limits --write):", e.Containers)
	for _, l := range e.Low {
		fmt.Fprintf(&b, "\n  %s is %d, needs %d: %s", l.Key, l.Have, l.Need, l.Why)
	}
	return b.String()
}

// checkLimits raises, before any node is made, the host limits that the
// containers running once this up is done need; it says once what it
// changed.
func (c *call) checkLimits() error {
	if c.e.Limits == nil {
		return nil
	}
	n := c.containersAfterUp()
	if n == 0 {
		return nil
	}
	low, err := c.e.Limits.Check(n)
	if err != nil || len(low) == 0 {
		return err
	}
	if os.Geteuid() != 0 {
		return &LimitsError{Containers: n, Low: low}
	}
	if err := c.e.Limits.Raise(low); err != nil {
		return err
	}
	var what []string
	for _, l := range low {
		what = append(what, l.String())
	}
	c.emit("", PhaseHost, "raised kernel limits for %d containers: %s (until reboot; lab host-limits --write keeps them)", n, strings.Join(what, ", "))
	return nil
}

// containersAfterUp counts the system containers that will run on this
// machine: this lab's, and those other labs run now.
func (c *call) containersAfterUp() int {
	n := 0
	kinds := map[string]bool{}
	for _, node := range c.lab.Nodes {
		p, err := c.e.provider(node.Provider)
		if err == nil && p.Info().SharesKernel {
			n++
			kinds[node.Provider] = true
		}
	}
	for name := range kinds {
		p, _ := c.e.provider(name)
		l, ok := p.(providers.Lister)
		if !ok {
			continue
		}
		found, err := l.List(c.ctx)
		if err != nil {
			continue
		}
		for _, f := range found {
			if f.Lab != c.lab.Name && f.State == providers.Running {
				n++
			}
		}
	}
	return n
}
