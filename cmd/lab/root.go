package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/labctl/lab/engine"
	"github.com/labctl/lab/image"
	"github.com/labctl/lab/network"
	"github.com/labctl/lab/providers"
	_ "github.com/labctl/lab/providers/libvirt" // registers "libvirt"
	_ "github.com/labctl/lab/providers/lxc"     // registers "lxc"
	"github.com/labctl/lab/provision"
	"github.com/labctl/lab/state"
	"github.com/labctl/lab/topology"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// cfg holds the user's settings: flags, LAB_* environment variables and
// ~/.config/lab/config.yaml, in that order of precedence.
var cfg = viper.New()

// Settings and their defaults.
var settings = []struct{ key, def, help string }{
	{"file", "lab.yaml", "the lab file"},
	{"cache_dir", "/var/cache/lab", "where built images and downloaded .debs are kept"},
	{"mirror", image.DefaultMirror, "the Debian mirror images are built from"},
	{"provider", topology.DefaultProvider, "the provider of roles whose lab file names none"},
	{"lxc_path", "/var/lib/lxc", "where LXC keeps containers"},
	{"workers", "8", "how many nodes are worked on at once"},
	{"libvirt_accel", "", "force libvirt acceleration: kvm or tcg"},
	{"host_paths", "", "host folders outside a lab's folder that its steps may copy or run (':'-separated)"},
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "lab",
		Short: "Multi-node labs from one topology file, on LXC containers and libvirt VMs",
		Long: `lab turns one topology file (lab.yaml) into a running, reproducible cluster:
a private network with fixed addresses and DNS names, nodes started in parallel
from cached images, provisioned in dependency order, health-checked.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return loadConfig(cmd)
		},
	}
	root.PersistentFlags().StringP("file", "f", "lab.yaml", "lab file (or LAB_FILE)")
	root.PersistentFlags().String("config", "", "user config file (default ~/.config/lab/config.yaml)")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w (see %s --help)", err, c.CommandPath())}
	})
	root.AddCommand(
		newUp(), newStatus(), newPlan(), newValidate(), newExec(), newSSH(), newProvision(),
		newHalt(), newDestroy(), newInventory(), newSSHConfig(), newImage(), newVersion(),
	)
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			c.Args = cobra.ArbitraryArgs
			c.RunE = func(cmd *cobra.Command, args []string) error {
				if len(args) > 0 {
					return usagef("completion: no shell %q (have: bash, zsh, fish, powershell)", args[0])
				}
				return cmd.Help()
			}
		}
		c.Args = wrapArgs(c.Args)
	}
	return root
}

// wrapArgs makes argument-count errors usage errors (exit 2).
func wrapArgs(v cobra.PositionalArgs) cobra.PositionalArgs {
	if v == nil {
		return nil
	}
	return func(cmd *cobra.Command, args []string) error {
		if err := v(cmd, args); err != nil {
			return usageError{fmt.Errorf("%s: %w", cmd.CommandPath(), err)}
		}
		return nil
	}
}

func loadConfig(cmd *cobra.Command) error {
	for _, s := range settings {
		cfg.SetDefault(s.key, s.def)
	}
	cfg.SetEnvPrefix("LAB")
	cfg.AutomaticEnv()
	cfg.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	_ = cfg.BindPFlag("file", cmd.Flags().Lookup("file"))
	if f := cmd.Flags().Lookup("config"); f != nil && f.Value.String() != "" {
		cfg.SetConfigFile(f.Value.String())
	} else {
		dir := os.Getenv("XDG_CONFIG_HOME")
		if dir == "" {
			home, _ := os.UserHomeDir()
			dir = filepath.Join(home, ".config")
		}
		cfg.SetConfigFile(filepath.Join(dir, "lab", "config.yaml"))
	}
	explicit := cmd.Flags().Lookup("config") != nil && cmd.Flags().Lookup("config").Value.String() != ""
	if explicit {
		if fi, err := os.Stat(cfg.ConfigFileUsed()); err != nil || !fi.Mode().IsRegular() {
			return usagef("--config %s: not a readable file", cfg.ConfigFileUsed())
		}
	}
	if err := cfg.ReadInConfig(); err != nil {
		var nf viper.ConfigFileNotFoundError
		if explicit || (!errors.As(err, &nf) && !os.IsNotExist(err) && !strings.Contains(err.Error(), "no such file")) {
			return usagef("config %s: %v", cfg.ConfigFileUsed(), err)
		}
	}
	return checkSettings()
}

// checkSettings refuses bad settings from the environment or the config
// file (a usage error, exit 2), instead of silently using a default.
func checkSettings() error {
	if w := cfg.GetString("workers"); w != "" {
		n, err := strconv.Atoi(w)
		if err != nil || n < 1 || n > 1024 {
			return usagef("setting workers (LAB_WORKERS) = %q: want a whole number from 1 to 1024", w)
		}
	}
	if p := cfg.GetString("provider"); !slices.Contains(providers.Names(), p) {
		return usagef("setting provider (LAB_PROVIDER) = %q: want one of %s", p, strings.Join(providers.Names(), ", "))
	}
	if a := cfg.GetString("libvirt_accel"); a != "" && a != "kvm" && a != "tcg" {
		return usagef("setting libvirt_accel (LAB_LIBVIRT_ACCEL) = %q: want kvm or tcg", a)
	}
	for _, p := range hostPaths() {
		if !filepath.IsAbs(p) {
			return usagef("setting host_paths (LAB_HOST_PATHS): %q: want absolute paths", p)
		}
	}
	for _, k := range []string{"cache_dir", "lxc_path"} {
		if v := cfg.GetString(k); !filepath.IsAbs(v) {
			return usagef("setting %s (LAB_%s) = %q: want an absolute path", k, strings.ToUpper(k), v)
		}
	}
	return nil
}

// loadTopology reads the lab file named by -f, LAB_FILE or the default.
func loadTopology() (*topology.Topology, error) {
	return topology.LoadWith(cfg.GetString("file"), topology.Options{
		Provider: cfg.GetString("provider"), Providers: providers.Names(), HostPaths: hostPaths(),
	})
}

// hostPaths is the host_paths setting: a list in the config file, or a
// ':'-separated string (LAB_HOST_PATHS).
func hostPaths() []string {
	var out []string
	switch v := cfg.Get("host_paths").(type) {
	case []any:
		for _, p := range v {
			out = append(out, fmt.Sprint(p))
		}
	case string:
		out = filepath.SplitList(v)
	}
	return slices.DeleteFunc(out, func(p string) bool { return p == "" })
}

// stateDir is the lab's .lab folder, beside its file.
func stateDir() string {
	abs, err := filepath.Abs(cfg.GetString("file"))
	if err != nil {
		abs = cfg.GetString("file")
	}
	return filepath.Join(filepath.Dir(abs), ".lab")
}

func needRoot() error {
	if os.Geteuid() != 0 {
		return errors.New("this command makes containers, bridges and firewall rules: run it as root")
	}
	return nil
}

// newEngine wires the engine for the lab in the current settings.
func newEngine(sink engine.Sink) *engine.Engine { return wireEngine(sink, false) }

// newReader wires an engine for commands that only look (status, plan,
// inventory): its providers start no daemon and change nothing.
func newReader() *engine.Engine { return wireEngine(nil, true) }

func wireEngine(sink engine.Sink, readOnly bool) *engine.Engine {
	dir := stateDir()
	var mu sync.Mutex
	made := map[string]providers.Provider{}
	pcfg := providers.Config{LXCPath: cfg.GetString("lxc_path"), Accel: cfg.GetString("libvirt_accel"), ReadOnly: readOnly}
	e := &engine.Engine{
		Store: state.Open(dir),
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
		Networks:    &network.Manager{Owner: dir},
		Provisioner: provision.New(),
		Events:      sink,
		Mirror:      cfg.GetString("mirror"),
		Workers:     cfg.GetInt("workers"),
	}
	e.Images = &image.Cache{Dir: cfg.GetString("cache_dir"), Log: func(key, line string) {
		if sink != nil {
			sink.Emit(engine.Event{Phase: engine.PhaseImage, Message: key + ": " + line})
		}
	}}
	return e
}
