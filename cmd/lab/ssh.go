package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/labctl/lab/providers"
	"github.com/labctl/lab/topology"
)

func newSSH(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "ssh NODE [-- COMMAND]",
		Short: "Open an interactive shell in a node (attaches to it; no SSH server needed)",
		Args:  cobra.MinimumNArgs(1),
		RunE: a.withLab(true, func(cmd *cobra.Command, top *topology.Topology, args []string) error {
			t, err := a.engine(nil).Target(cmd.Context(), top, args[0])
			if err != nil {
				return err
			}
			err = t.Provider.Shell(cmd.Context(), t.Node, args[1:])
			var ee *providers.ExitError
			if errors.As(err, &ee) {
				return exitWith(ee.Code)
			}
			return err
		}),
	}
}
