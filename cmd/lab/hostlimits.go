package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/labctl/lab/host"
	"github.com/labctl/lab/internal/fsx"
)

func newHostLimits() *cobra.Command {
	var nodes int
	var write, asJSON bool
	c := &cobra.Command{
		Use:   "host-limits",
		Short: "Show the kernel limits many containers need, and make them last past a reboot",
		Long: `Show the kernel limits that system containers run into on one machine
(inotify instances and watches, the key quota, PIDs): what this machine has,
and what --nodes containers running at once need. lab up raises what is too
low for its lab by itself (as root) until the next reboot; --write raises
them now and writes ` + host.PersistPath + ` so that they last.`,
		Example: `  lab host-limits --nodes 60
  lab host-limits --nodes 100 --write`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if nodes < 0 {
				return usagef("host-limits: --nodes %d: want 0 or more", nodes)
			}
			all := host.Default.Needs(nodes)
			if write {
				if err := needRoot(); err != nil {
					return err
				}
				low, err := host.Default.Check(nodes)
				if err != nil {
					return err
				}
				if err := host.Default.Raise(low); err != nil {
					return err
				}
				if err := fsx.WriteAtomic(host.PersistPath, []byte(host.PersistFile(all, nodes)), 0o644); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s; raised %d limits now\n", host.PersistPath, len(low))
				all = host.Default.Needs(nodes)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), map[string]any{"version": 1, "nodes": nodes, "limits": all})
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintf(w, "LIMIT\tHAVE\tNEED (%d nodes)\tWHY\n", nodes)
			for _, l := range all {
				mark := ""
				if l.Have < l.Need {
					mark = "  (too low)"
				}
				fmt.Fprintf(w, "%s\t%d\t%d%s\t%s\n", l.Key, l.Have, l.Need, mark, l.Why)
			}
			return w.Flush()
		},
	}
	c.Flags().IntVar(&nodes, "nodes", 100, "containers running at once")
	c.Flags().BoolVar(&write, "write", false, "raise them now and write "+host.PersistPath)
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}
