package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/labctl/lab/topology"
)

func newStatus(a *app) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "status",
		Short: "Show each node's state, provider, addresses and provisioning",
		Args:  cobra.NoArgs,
		RunE: a.withLab(false, func(cmd *cobra.Command, top *topology.Topology, _ []string) error {
			e := a.reader()
			r, _, err := e.Report(cmd.Context(), top)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), r)
			}
			ns, fw, faults := r.Nodes, r.Forwards, r.Faults
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NODE\tROLE\tPROVIDER\tSTATE\tADDRESS\tPROVISIONED\tNOTE")
			for _, s := range ns {
				prov := s.Provider
				if s.Member != "" {
					prov += "@" + s.Member
				}
				if s.Privileged {
					prov += " (privileged)"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.Role, prov, s.State, strings.Join(s.Addresses, ","), dash(s.Provisioned), s.Note)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			for _, f := range fw {
				fmt.Fprintf(cmd.OutOrStdout(), "forward %s:%d → %s (%s)\n", f.Address, f.Host, f.Node, f.Target)
			}
			for _, f := range faults {
				fmt.Fprintf(cmd.OutOrStdout(), "fault %s: %s %s since %s (lab fault heal %s)\n", f.ID, f.Kind, strings.Join(f.Targets, " "), f.Since.Local().Format(time.TimeOnly), f.ID)
			}
			for _, s := range ns {
				for _, r := range s.Firewall {
					fmt.Fprintf(cmd.OutOrStdout(), "firewall %s: accepts %s\n", s.Name, r)
				}
			}
			return nil
		}),
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}
