package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/labctl/lab/engine"
	"github.com/labctl/lab/helper"
	"github.com/labctl/lab/host"
	"github.com/labctl/lab/image"
	"github.com/labctl/lab/internal/userns"
	"github.com/labctl/lab/network"
	"github.com/labctl/lab/providers"
	_ "github.com/labctl/lab/providers/libvirt" // registers "libvirt"
	_ "github.com/labctl/lab/providers/lxc"     // registers "lxc"
	_ "github.com/labctl/lab/providers/lxd"     // registers "lxd"
	"github.com/labctl/lab/provision"
	"github.com/labctl/lab/state"
	"github.com/labctl/lab/topology"
)

// app is one run of lab: the user's settings, read once before the command
// runs, and how to wire an engine from them.
type app struct {
	set settings
	// missingSourcesOK: the command reads a lab file whose step files may be
	// absent (lab graph).
	missingSourcesOK bool
	// lxd is the lab file's lxd: section, once it is read (lxdRead).
	lxd     topology.LXD
	lxdRead bool
}

// loadTopology reads the lab file named by -f, LAB_FILE or the default.
func (a *app) loadTopology() (*topology.Topology, error) {
	top, err := topology.LoadWith(a.set.File, topology.Options{
		Provider: a.set.Provider, Providers: providers.Names(), HostPaths: a.set.HostPaths,
		MissingSources: a.missingSourcesOK,
	})
	if top != nil {
		a.lxd, a.lxdRead = top.LXD, true
	}
	return top, err
}

// lxdPlaceFile keeps the lab file's lxd: section beside the state, for the
// commands that work from the state alone (destroy with a broken lab
// file): they must reach the same cluster, not the local LXD.
func (a *app) lxdPlaceFile() string { return filepath.Join(a.stateDir(), "lxd.json") }

// keepLXDPlace records the lab file's lxd: section (or forgets an empty
// one), once the file was read.
func (a *app) keepLXDPlace() {
	if !a.lxdRead {
		return
	}
	if a.lxd == (topology.LXD{}) {
		_ = os.Remove(a.lxdPlaceFile())
		return
	}
	if b, err := json.Marshal(a.lxd); err == nil && os.MkdirAll(a.stateDir(), 0o755) == nil {
		_ = os.WriteFile(a.lxdPlaceFile(), b, 0o644)
	}
}

// lxdPlace is where provider lxd makes nodes: LAB_LXD_REMOTE and
// LAB_LXD_PROJECT (or the config file) over the lab file's lxd: section,
// or when the file could not be read, over the one kept beside the state.
func (a *app) lxdPlace() (remote, project string) {
	place := a.lxd
	if !a.lxdRead {
		if b, err := os.ReadFile(a.lxdPlaceFile()); err == nil {
			_ = json.Unmarshal(b, &place)
		}
	}
	remote, project = place.Remote, place.Project
	if a.set.LXDRemote != "" {
		remote = a.set.LXDRemote
	}
	if a.set.LXDProject != "" {
		project = a.set.LXDProject
	}
	return remote, project
}

// stateDir is the lab's .lab folder, beside its file.
func (a *app) stateDir() string {
	abs, err := filepath.Abs(a.set.File)
	if err != nil {
		abs = a.set.File
	}
	return filepath.Join(filepath.Dir(abs), topology.StateDirName)
}

// engine wires the engine for commands that change the lab.
func (a *app) engine(sink engine.Sink) *engine.Engine { return a.wire(sink, false) }

// reader wires an engine for commands that only look (status, plan,
// inventory): its providers start no daemon and change nothing.
func (a *app) reader() *engine.Engine { return a.wire(nil, true) }

func (a *app) wire(sink engine.Sink, readOnly bool) *engine.Engine {
	dir := a.stateDir()
	var mu sync.Mutex
	made := map[string]providers.Provider{}
	pcfg := providers.Config{LXCPath: a.set.LXCPath, Accel: a.set.LibvirtAccel, ReadOnly: readOnly}
	pcfg.LXDRemote, pcfg.LXDProject = a.lxdPlace()
	if !readOnly {
		a.keepLXDPlace()
	}
	var limits engine.Limits
	if !readOnly {
		limits = host.Default
	}
	return &engine.Engine{
		Limits: limits,
		Store:  state.Open(dir),
		Provider: func(name string) (providers.Provider, error) {
			mu.Lock()
			defer mu.Unlock()
			if p, ok := made[name]; ok {
				return p, nil
			}
			p, err := providers.New(name, pcfg)
			if err != nil {
				return nil, err
			}
			made[name] = p
			return p, nil
		},
		Images:      a.images(),
		Networks:    networks(dir),
		Provisioner: provision.New(),
		Events:      sink,
		Mirror:      a.set.Mirror,
		Workers:     a.set.Workers,
	}
}

func (a *app) images() *image.Cache {
	c := &image.Cache{Dir: a.set.CacheDir}
	if os.Geteuid() != 0 {
		c.Userns, _ = userns.Current() // nil: needHost says why
		if a.set.SharedCache != "none" && a.set.SharedCache != a.set.CacheDir {
			c.Shared = a.set.SharedCache
		}
		return c
	}
	if g, err := user.LookupGroup(host.Group); err == nil {
		c.ShareGID, _ = strconv.Atoi(g.Gid) // a host with users of lab: root's images are theirs too
	}
	return c
}

// networks is the lab's network: root's own hand, or for a user the
// setuid helper that lab host setup installed.
func networks(stateDir string) engine.Networks {
	if os.Geteuid() != 0 {
		return helper.NewClient(host.HelperPath)
	}
	return &network.Manager{Owner: stateDir}
}

// withLab wraps a command that needs the lab file (and root, when asRoot).
func (a *app) withLab(asRoot bool, f func(cmd *cobra.Command, top *topology.Topology, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		top, err := a.loadTopology()
		if err != nil {
			return err
		}
		if asRoot {
			if err := needHost(); err != nil {
				return err
			}
		}
		return f(cmd, top, args)
	}
}

func needRoot() error {
	if os.Geteuid() != 0 {
		return errors.New("this command makes containers, bridges and firewall rules: run it as root")
	}
	return nil
}

// needHost lets root through, and a user whom lab host setup set up: in
// the lab group, with a range of ids and the network helper.
func needHost() error {
	if os.Geteuid() == 0 {
		return nil
	}
	u, err := host.Self()
	if err != nil {
		return err
	}
	setup := fmt.Sprintf("lab without root needs a one-time setup by root: sudo lab host setup --user %s", u.Name)
	if _, _, err := u.Range(); err != nil {
		return fmt.Errorf("%s (%v)", setup, err)
	}
	if err := unix.Access(host.HelperPath, unix.X_OK); err != nil {
		return fmt.Errorf("%s (network helper %s: %v; a new member of the group lab must log in again)", setup, host.HelperPath, err)
	}
	return nil
}
