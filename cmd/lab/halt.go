package main

import (
	"github.com/spf13/cobra"

	"github.com/labctl/lab/topology"
)

func newHalt(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "halt [NODE…]",
		Short: "Stop nodes and keep them (lab up starts them again)",
		RunE: a.withLab(true, func(cmd *cobra.Command, top *topology.Topology, args []string) error {
			ui := newProgress(cmd.ErrOrStderr(), cmd.OutOrStdout(), false)
			err := a.engine(ui).Halt(cmd.Context(), top, args)
			ui.Close()
			return err
		}),
	}
}
