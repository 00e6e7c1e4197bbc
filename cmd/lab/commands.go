package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/labctl/lab/engine"
	"github.com/labctl/lab/image"
	"github.com/labctl/lab/providers"
	"github.com/labctl/lab/provision"
	"github.com/labctl/lab/topology"
)

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newUp() *cobra.Command {
	var asJSON, force bool
	var wait time.Duration
	c := &cobra.Command{
		Use:   "up",
		Short: "Create, start and provision the lab; scale it to the counts in the file",
		Args:  cobra.NoArgs,
		RunE: withLab(true, func(cmd *cobra.Command, top *topology.Topology, _ []string) error {
			var err error
			ui := newProgress(cmd.ErrOrStderr(), cmd.OutOrStdout(), asJSON)
			e := newEngine(ui)
			e.LockWait = wait
			start := time.Now()
			_, err = e.Up(cmd.Context(), top, engine.UpOptions{Provision: force})
			ui.Close()
			if err != nil {
				var ue *engine.UpError
				if errors.As(err, &ue) {
					for i, f := range ue.Failed {
						if p := e.LogPath(f.Node); fileExists(p) {
							ue.Failed[i].Err = fmt.Errorf("%w\n  full log: %s", f.Err, p)
						}
					}
				}
				return err
			}
			if !asJSON {
				fmt.Fprintf(cmd.ErrOrStderr(), "lab %s is up (%.1fs)\n", top.Name, time.Since(start).Seconds())
			}
			return nil
		}),
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print one JSON event per line on stdout")
	c.Flags().BoolVar(&force, "provision", false, "run every provisioning step again")
	c.Flags().DurationVar(&wait, "wait-lock", 0, "wait this long for another lab command on this lab to finish (default: fail at once)")
	return c
}

// withLab wraps a command that needs the lab file (and root, when asRoot).
func withLab(asRoot bool, f func(cmd *cobra.Command, top *topology.Topology, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		top, err := loadTopology()
		if err != nil {
			return err
		}
		if asRoot {
			if err := needRoot(); err != nil {
				return err
			}
		}
		return f(cmd, top, args)
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func newStatus() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "status",
		Short: "Show each node's state, provider, addresses and provisioning",
		Args:  cobra.NoArgs,
		RunE: withLab(false, func(cmd *cobra.Command, top *topology.Topology, _ []string) error {
			var err error
			e := newReader()
			ns, lab, err := e.Status(cmd.Context(), top)
			if err != nil {
				return err
			}
			fw, err := e.Forwards()
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), map[string]any{"version": 1, "lab": lab.Name, "networks": lab.Networks, "nodes": ns, "forwards": fw})
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NODE\tROLE\tPROVIDER\tSTATE\tADDRESS\tPROVISIONED\tNOTE")
			for _, s := range ns {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.Role, s.Provider, s.State, strings.Join(s.Addresses, ","), dash(s.Provisioned), s.Note)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			for _, f := range fw {
				fmt.Fprintf(cmd.OutOrStdout(), "forward %s:%d → %s (%s)\n", f.Address, f.Host, f.Node, f.Target)
			}
			return nil
		}),
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newPlan() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "plan",
		Short: "Show what lab up would do: create, start, provision, destroy",
		Args:  cobra.NoArgs,
		RunE: withLab(false, func(cmd *cobra.Command, top *topology.Topology, _ []string) error {
			var err error
			p, _, err := newReader().Plan(cmd.Context(), top)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), p)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "lab %s:\n%s", p.Lab, p.String())
			return nil
		}),
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func newValidate() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "validate",
		Short: "Check the lab file without touching the machine and print the expanded nodes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			top, err := loadTopology()
			var te *topology.Errors
			if errors.As(err, &te) && asJSON {
				_ = printJSON(cmd.OutOrStdout(), map[string]any{"version": 1, "valid": false, "errors": te.Sorted(), "more_errors": te.More})
			}
			if err != nil {
				return err
			}
			lab, err := topology.Expand(top, nil)
			if err != nil {
				return usageError{err}
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), map[string]any{"version": 1, "valid": true, "lab": lab.Name, "networks": lab.Networks, "nodes": lab.Nodes})
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "%s: lab %s is valid: %d roles, %d nodes\n", top.File, lab.Name, len(top.Nodes), len(lab.Nodes))
			for _, n := range lab.Networks {
				sub := n.Subnet.String()
				if n.Auto {
					sub += " (chosen when first made, if free)"
				}
				fmt.Fprintf(out, "network %s: bridge %s, %s, DNS *.%s\n", n.Name, n.Bridge, sub, n.Domain)
			}
			w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NODE\tROLE\tPROVIDER\tIMAGE\tADDRESS\tCPUS\tMEMORY\tPACKAGES")
			for _, n := range lab.Nodes {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%dM\t%s\n", n.Name, n.Role, n.Provider, n.Image, n.IP(), n.CPUs, n.Memory>>20, dash(strings.Join(n.Packages, ",")))
			}
			return w.Flush()
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func newExec() *cobra.Command {
	var role string
	c := &cobra.Command{
		Use:   "exec [NODE | --role ROLE] -- COMMAND [ARGS…]",
		Short: "Run a command in a node (or every node of a role) with its output and exit code",
		Example: `  lab exec pg1 -- psql -c 'select 1'
  lab exec --role nginx -- systemctl reload nginx`,
		RunE: func(cmd *cobra.Command, args []string) error {
			dash := cmd.ArgsLenAtDash()
			var nodes, command []string
			if dash < 0 {
				if role == "" && len(args) > 0 {
					nodes, command = args[:1], args[1:]
				} else {
					command = args
				}
			} else {
				nodes, command = args[:dash], args[dash:]
			}
			if len(command) == 0 {
				return usagef("exec: no command: lab exec NODE -- COMMAND")
			}
			if (role == "") == (len(nodes) == 0) || len(nodes) > 1 {
				return usagef("exec: name one node, or --role ROLE")
			}
			top, err := loadTopology()
			if err != nil {
				return err
			}
			if err := needRoot(); err != nil {
				return err
			}
			e := newEngine(nil)
			if role != "" {
				if top.RoleByName(role) == nil {
					return usagef("exec: no role %q in %s", role, top.File)
				}
				return execRole(cmd.Context(), e, top, role, command, cmd.OutOrStdout(), cmd.ErrOrStderr())
			}
			p, t, lab, err := e.Target(cmd.Context(), top, nodes[0])
			if err != nil {
				return err
			}
			env := factsEnv(lab, nodes[0])
			code, err := p.Exec(cmd.Context(), t, command, providers.ExecIO{Stdin: os.Stdin, Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr(), Env: env})
			if err != nil {
				return err
			}
			if code != 0 {
				return exitWith(code)
			}
			return nil
		},
	}
	c.Flags().StringVar(&role, "role", "", "run on every node of this role, in parallel")
	return c
}

// exitWith makes lab exit with a command's own exit code.
type exitStatus struct{ code int }

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", e.code) }
func exitWith(code int) error      { return exitStatus{code} }

// factsEnv is the LAB_* environment of a node, for exec.
func factsEnv(lab *topology.Lab, node string) []string {
	if lab == nil {
		return nil
	}
	if n := lab.Node(node); n != nil {
		return provisionFacts(lab, *n)
	}
	return nil
}

// prefixWriter prefixes every line with the node's name.
type prefixWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	prefix string
	buf    bytes.Buffer
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.buf.Write(b)
	for {
		line, err := p.buf.ReadBytes('\n')
		if err != nil {
			p.buf.Write(line)
			break
		}
		p.mu.Lock()
		fmt.Fprintf(p.w, "%s | %s", p.prefix, line)
		p.mu.Unlock()
	}
	return len(b), nil
}

func (p *prefixWriter) Flush() {
	if p.buf.Len() > 0 {
		p.mu.Lock()
		fmt.Fprintf(p.w, "%s | %s\n", p.prefix, p.buf.String())
		p.mu.Unlock()
		p.buf.Reset()
	}
}

func execRole(ctx context.Context, e *engine.Engine, top *topology.Topology, role string, command []string, stdout, stderr io.Writer) error {
	_, lab, err := e.Status(ctx, top)
	if err != nil {
		return err
	}
	nodes := lab.RoleNodes(role)
	var mu sync.Mutex
	width := 0
	for _, n := range nodes {
		width = max(width, len(n.Name))
	}
	failed := map[string]string{}
	var g errgroup.Group
	for _, n := range nodes {
		g.Go(func() error {
			name := fmt.Sprintf("%-*s", width, n.Name)
			ow := &prefixWriter{mu: &mu, w: stdout, prefix: name}
			ew := &prefixWriter{mu: &mu, w: stderr, prefix: name}
			p, t, _, err := e.Target(ctx, top, n.Name)
			var code int
			if err == nil {
				code, err = p.Exec(ctx, t, command, providers.ExecIO{Stdout: ow, Stderr: ew, Env: provisionFacts(lab, n)})
			}
			ow.Flush()
			ew.Flush()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed[n.Name] = err.Error()
			} else if code != 0 {
				failed[n.Name] = fmt.Sprintf("exit %d", code)
			}
			return nil
		})
	}
	_ = g.Wait()
	if len(failed) > 0 {
		var names []string
		for n, why := range failed {
			names = append(names, n+" ("+why+")")
		}
		sort.Strings(names)
		return fmt.Errorf("failed on %d of %d %s nodes: %s", len(failed), len(nodes), role, strings.Join(names, ", "))
	}
	return nil
}

func newSSH() *cobra.Command {
	return &cobra.Command{
		Use:   "ssh NODE [-- COMMAND]",
		Short: "Open an interactive shell in a node (attaches to it; no SSH server needed)",
		Args:  cobra.MinimumNArgs(1),
		RunE: withLab(true, func(cmd *cobra.Command, top *topology.Topology, args []string) error {
			var err error
			p, t, _, err := newEngine(nil).Target(cmd.Context(), top, args[0])
			if err != nil {
				return err
			}
			err = p.Shell(cmd.Context(), t, args[1:])
			var ee *providers.ExitError
			if errors.As(err, &ee) {
				return exitWith(ee.Code)
			}
			return err
		}),
	}
}

func newProvision() *cobra.Command {
	var role string
	c := &cobra.Command{
		Use:   "provision [NODE…] [--role ROLE]",
		Short: "Run provisioning again on nodes (all, some, or one role), whatever the records say",
		RunE: withLab(true, func(cmd *cobra.Command, top *topology.Topology, args []string) error {
			var err error
			if role != "" && top.RoleByName(role) == nil {
				return usagef("provision: no role %q in %s", role, top.File)
			}
			ui := newProgress(cmd.ErrOrStderr(), cmd.OutOrStdout(), false)
			e := newEngine(ui)
			err = e.Reprovision(cmd.Context(), top, args, role)
			ui.Close()
			return err
		}),
	}
	c.Flags().StringVar(&role, "role", "", "only the nodes of this role")
	return c
}

func newHalt() *cobra.Command {
	return &cobra.Command{
		Use:   "halt [NODE…]",
		Short: "Stop nodes and keep them (lab up starts them again)",
		RunE: withLab(true, func(cmd *cobra.Command, top *topology.Topology, args []string) error {
			var err error
			ui := newProgress(cmd.ErrOrStderr(), cmd.OutOrStdout(), false)
			err = newEngine(ui).Halt(cmd.Context(), top, args)
			ui.Close()
			return err
		}),
	}
}

func newInventory() *cobra.Command {
	var asINI, path bool
	c := &cobra.Command{
		Use:   "inventory",
		Short: "Print an Ansible inventory of the lab: a group per role, facts as host variables",
		Long: `Print an Ansible inventory of the lab (YAML, or INI with --ini): a group per
role, the lab's facts as host variables (lab_ip, lab_role_pg_ips, …), and the
lab's SSH key. Roles need ssh: true for Ansible to reach them.

With --path, lab writes the inventory to .lab/inventory.yml (or .ini) and
prints that path. Use it with ansible -i: Debian 12's ansible-core cannot read
an inventory from a pipe such as <(lab inventory), because its script plugin's
shebang check drains the pipe before any parser sees it.`,
		Example: `  ansible -i $(lab inventory --path) all -m ping
  lab inventory --ini > hosts.ini`,
		Args: cobra.NoArgs,
		RunE: withLab(false, func(cmd *cobra.Command, top *topology.Topology, _ []string) error {
			lab, key, err := labAndKey(cmd.Context(), top)
			if err != nil {
				return err
			}
			name, content := "inventory.yml", provision.InventoryYAML(lab, key)
			if asINI {
				name, content = "inventory.ini", provision.InventoryINI(lab, key)
			}
			if !path {
				fmt.Fprint(cmd.OutOrStdout(), content)
				return nil
			}
			p := filepath.Join(stateDir(), name)
			if err := os.MkdirAll(stateDir(), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), p)
			return nil
		}),
	}
	c.Flags().BoolVar(&asINI, "ini", false, "INI instead of YAML")
	c.Flags().BoolVar(&path, "path", false, "write the inventory into .lab and print its path")
	return c
}

func newSSHConfig() *cobra.Command {
	return &cobra.Command{
		Use:     "ssh-config",
		Short:   "Print an OpenSSH config with a Host entry for every node (roles need ssh: true)",
		Example: `  lab ssh-config > lab.ssh && ssh -F lab.ssh pg1`,
		Args:    cobra.NoArgs,
		RunE: withLab(false, func(cmd *cobra.Command, top *topology.Topology, _ []string) error {
			lab, key, err := labAndKey(cmd.Context(), top)
			if err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), provision.SSHConfig(lab, key))
			return nil
		}),
	}
}

// labAndKey expands the lab as it exists (chosen subnets included) and finds
// its SSH key.
func labAndKey(ctx context.Context, top *topology.Topology) (*topology.Lab, string, error) {
	e := newReader()
	_, lab, err := e.Status(ctx, top)
	if err != nil {
		return nil, "", err
	}
	key := ""
	if fileExists(e.KeyPath()) {
		key = e.KeyPath()
	}
	return lab, key, nil
}

func newVersion() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print lab's version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "lab %s (providers: %s)\n", version, strings.Join(providers.Names(), ", "))
		},
	}
}

func newImage() *cobra.Command {
	c := &cobra.Command{Use: "image", Short: "Build, list and remove cached node images"}
	imgCache := func(sink func(string)) *image.Cache {
		return &image.Cache{Dir: cfg.GetString("cache_dir"), Log: func(key, line string) { sink(key + ": " + line) }}
	}
	build := &cobra.Command{
		Use:   "build",
		Short: "Build the images the lab file's roles need",
		Args:  cobra.NoArgs,
		RunE: withLab(true, func(cmd *cobra.Command, top *topology.Topology, _ []string) error {
			var err error
			e := newEngine(nil)
			specs, err := e.ImageSpecs(top)
			if err != nil {
				return err
			}
			start := time.Now()
			c := imgCache(func(s string) { fmt.Fprintf(cmd.ErrOrStderr(), "[%6.1fs] %s\n", time.Since(start).Seconds(), s) })
			g, ctx := errgroup.WithContext(cmd.Context())
			g.SetLimit(2)
			for _, spec := range specs {
				g.Go(func() error {
					img, err := c.Ensure(ctx, spec)
					if err == nil {
						fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\n", img.Key, strings.Join(img.Spec.Packages, ","))
					}
					return err
				})
			}
			return g.Wait()
		}),
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List cached images",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			imgs, err := imgCache(func(string) {}).List()
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "KEY\tSIZE\tBUILT\tBUILD TIME\tPACKAGES")
			for _, i := range imgs {
				fmt.Fprintf(w, "%s\t%dM\t%s\t%.1fs\t%s\n", i.Key, i.Size>>20, i.BuiltAt.Format(time.RFC3339), i.BuildTime.Seconds(), strings.Join(i.Spec.Packages, ","))
			}
			return w.Flush()
		},
	}
	rm := &cobra.Command{
		Use:   "rm KEY…",
		Short: "Remove cached images (nodes made from them must be destroyed first)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := needRoot(); err != nil {
				return err
			}
			c := imgCache(func(string) {})
			for _, k := range args {
				if err := c.Remove(k); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), "removed", k)
			}
			return nil
		},
	}
	prune := &cobra.Command{
		Use:   "prune",
		Short: "Remove every cached image and downloaded .deb",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := needRoot(); err != nil {
				return err
			}
			c := imgCache(func(string) {})
			imgs, err := c.List()
			if err != nil {
				return err
			}
			for _, i := range imgs {
				if err := c.Remove(i.Key); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), "removed", i.Key)
			}
			return c.PruneDebs()
		},
	}
	c.AddCommand(build, list, rm, prune)
	return c
}
