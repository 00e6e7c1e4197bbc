package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/labctl/lab/image"
	"github.com/labctl/lab/providers"
	"github.com/labctl/lab/topology"
)

// settings are the user's: flags, then LAB_* environment variables, then
// ~/.config/lab/config.yaml. They are read once per run and passed down as
// a value.
type settings struct {
	File         string
	CacheDir     string
	SharedCache  string
	Mirror       string
	Provider     string
	LXCPath      string
	Workers      int
	LibvirtAccel string
	HostPaths    []string
	LXDRemote    string
	LXDProject   string
}

// Settings and their defaults, for viper and for --help.
var settingKeys = []struct{ key, def, help string }{
	{"file", "lab.yaml", "the lab file"},
	{"cache_dir", "/var/cache/lab", "where built images and downloaded .debs are kept (not root: ~/.cache/lab)"},
	{"shared_cache", "/var/cache/lab", "not root: root's cache, whose shared images a lab unpacks instead of building its own (none: never)"},
	{"mirror", image.DefaultMirror, "the Debian mirror images are built from"},
	{"provider", topology.DefaultProvider, "the provider of roles whose lab file names none"},
	{"lxc_path", "/var/lib/lxc", "where LXC keeps containers (not root: ~/.local/share/lab/lxc)"},
	{"workers", "8", "how many nodes are worked on at once"},
	{"libvirt_accel", "", "force libvirt acceleration: kvm or tcg"},
	{"host_paths", "", "host folders outside a lab's folder that its steps may copy or run (':'-separated)"},
	{"lxd_remote", "", "provider lxd: the LXD remote (lxc remote list) nodes are made on, over the lab file's lxd.remote (\"\": the local LXD)"},
	{"lxd_project", "", "provider lxd: the LXD project nodes are made in, over the lab file's lxd.project (\"\": default)"},
}

// loadSettings reads the settings for cmd, refusing bad ones (a usage
// error, exit 2) instead of silently using a default.
func loadSettings(cmd *cobra.Command) (settings, error) {
	v := viper.New()
	for _, s := range settingKeys {
		v.SetDefault(s.key, s.def)
	}
	if os.Geteuid() != 0 {
		home, _ := os.UserHomeDir()
		for k, d := range userDirs(os.Getenv, home) {
			v.SetDefault(k, d)
		}
	}
	v.SetEnvPrefix("LAB")
	v.AutomaticEnv()
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	_ = v.BindPFlag("file", cmd.Flags().Lookup("file"))
	explicit := ""
	if f := cmd.Flags().Lookup("config"); f != nil {
		explicit = f.Value.String()
	}
	if err := readConfig(v, explicit); err != nil {
		return settings{}, err
	}
	s := settings{
		File: v.GetString("file"), CacheDir: v.GetString("cache_dir"), SharedCache: v.GetString("shared_cache"), Mirror: v.GetString("mirror"),
		Provider: v.GetString("provider"), LXCPath: v.GetString("lxc_path"), LibvirtAccel: v.GetString("libvirt_accel"),
		HostPaths: hostPaths(v.Get("host_paths")), LXDRemote: v.GetString("lxd_remote"), LXDProject: v.GetString("lxd_project"),
	}
	w := v.GetString("workers")
	n, err := strconv.Atoi(w)
	if err != nil || n < 1 || n > 1024 {
		return s, usagef("setting workers (LAB_WORKERS) = %q: want a whole number from 1 to 1024", w)
	}
	s.Workers = n
	return s, s.check()
}

// userDirs are the defaults of a user that is not root (#20): images and
// containers in the user's XDG folders, as LXC keeps an unprivileged
// user's containers in ~/.local/share/lxc; cache_dir may name a shared
// cache instead.
func userDirs(getenv func(string) string, home string) map[string]string {
	xdg := func(key, fallback string) string {
		if d := getenv(key); filepath.IsAbs(d) {
			return d
		}
		return filepath.Join(home, fallback)
	}
	return map[string]string{
		"cache_dir": filepath.Join(xdg("XDG_CACHE_HOME", ".cache"), "lab"),
		"lxc_path":  filepath.Join(xdg("XDG_DATA_HOME", ".local/share"), "lab", "lxc"),
	}
}

func readConfig(v *viper.Viper, explicit string) error {
	if explicit != "" {
		if fi, err := os.Stat(explicit); err != nil || !fi.Mode().IsRegular() {
			return usagef("--config %s: not a readable file", explicit)
		}
		v.SetConfigFile(explicit)
	} else {
		dir := os.Getenv("XDG_CONFIG_HOME")
		if dir == "" {
			home, _ := os.UserHomeDir()
			dir = filepath.Join(home, ".config")
		}
		v.SetConfigFile(filepath.Join(dir, "lab", "config.yaml"))
	}
	if err := v.ReadInConfig(); err != nil {
		var nf viper.ConfigFileNotFoundError
		if explicit != "" || (!errors.As(err, &nf) && !os.IsNotExist(err) && !strings.Contains(err.Error(), "no such file")) {
			return usagef("config %s: %v", v.ConfigFileUsed(), err)
		}
	}
	return nil
}

func (s settings) check() error {
	if !slices.Contains(providers.Names(), s.Provider) {
		return usagef("setting provider (LAB_PROVIDER) = %q: want one of %s", s.Provider, strings.Join(providers.Names(), ", "))
	}
	if a := s.LibvirtAccel; a != "" && a != "kvm" && a != "tcg" {
		return usagef("setting libvirt_accel (LAB_LIBVIRT_ACCEL) = %q: want kvm or tcg", a)
	}
	for _, p := range s.HostPaths {
		if !filepath.IsAbs(p) {
			return usagef("setting host_paths (LAB_HOST_PATHS): %q: want absolute paths", p)
		}
	}
	for k, v := range map[string]string{"lxd_remote": s.LXDRemote, "lxd_project": s.LXDProject} {
		if v != "" && !topology.ValidLXDName(v) {
			return usagef("setting %s (LAB_%s) = %q: want letters, digits, '.', '_' or '-'", k, strings.ToUpper(k), v)
		}
	}
	if s.SharedCache != "none" && !filepath.IsAbs(s.SharedCache) {
		return usagef("setting shared_cache (LAB_SHARED_CACHE) = %q: want an absolute path, or none", s.SharedCache)
	}
	for k, v := range map[string]string{"cache_dir": s.CacheDir, "lxc_path": s.LXCPath} {
		if !filepath.IsAbs(v) {
			return usagef("setting %s (LAB_%s) = %q: want an absolute path", k, strings.ToUpper(k), v)
		}
	}
	return nil
}

// hostPaths is the host_paths setting: a list in the config file, or a
// ':'-separated string (LAB_HOST_PATHS).
func hostPaths(v any) []string {
	var out []string
	switch v := v.(type) {
	case []any:
		for _, p := range v {
			out = append(out, fmt.Sprint(p))
		}
	case string:
		out = filepath.SplitList(v)
	}
	return slices.DeleteFunc(out, func(p string) bool { return p == "" })
}
