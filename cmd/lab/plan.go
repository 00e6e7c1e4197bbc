package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/labctl/lab/topology"
)

func newPlan(a *app) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "plan",
		Short: "Show what lab up would do: create, start, provision, destroy",
		Args:  cobra.NoArgs,
		RunE: a.withLab(false, func(cmd *cobra.Command, top *topology.Topology, _ []string) error {
			p, _, err := a.reader().Plan(cmd.Context(), top)
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
