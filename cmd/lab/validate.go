package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/labctl/lab/topology"
)

func newValidate(a *app) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "validate",
		Short: "Check the lab file without touching the machine and print the expanded nodes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			top, err := a.loadTopology()
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
			warnings := top.Warnings()
			if asJSON {
				return printJSON(cmd.OutOrStdout(), map[string]any{"version": 1, "valid": true, "lab": lab.Name, "networks": lab.Networks, "nodes": lab.Nodes, "aliases": top.Aliases, "warnings": warnings})
			}
			for _, w := range warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning: "+w)
			}
			return printLab(cmd.OutOrStdout(), top, lab)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func printLab(out io.Writer, top *topology.Topology, lab *topology.Lab) error {
	fmt.Fprintf(out, "%s: lab %s is valid: %d roles, %d nodes\n", top.File, lab.Name, len(top.Nodes), len(lab.Nodes))
	for _, n := range lab.Networks {
		sub := n.Subnet.String()
		if n.Auto {
			sub += " (chosen when first made, if free)"
		}
		if n.Subnet6.IsValid() {
			sub += ", " + n.Subnet6.String()
		}
		fmt.Fprintf(out, "network %s: bridge %s, %s, DNS *.%s\n", n.Name, n.Bridge, sub, n.Domain)
	}
	for _, a := range top.AliasNames() {
		fmt.Fprintf(out, "alias %s: %s\n", a, top.Aliases[a])
	}
	for _, r := range top.Nodes {
		for _, f := range lab.Floating(r.Role) {
			six := ""
			if f.Addr6.IsValid() {
				six = " and " + f.Addr6.String()
			}
			fmt.Fprintf(out, "floating %s%s: role %s, network %s\n", f.Addr, six, r.Role, f.Network)
		}
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NODE\tROLE\tPROVIDER\tIMAGE\tADDRESS\tCPUS\tMEMORY\tPACKAGES")
	for _, n := range lab.Nodes {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%dM\t%s\n", n.Name, n.Role, n.Provider, n.Image, n.IP(), n.CPUs, n.Memory>>20, dash(strings.Join(n.Packages, ",")))
	}
	return w.Flush()
}
