package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/labctl/lab/provision"
	"github.com/labctl/lab/topology"
)

func newSSHConfig(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "ssh-config",
		Short:   "Print an OpenSSH config with a Host entry for every node (roles need ssh: true)",
		Example: `  lab ssh-config > lab.ssh && ssh -F lab.ssh pg1`,
		Args:    cobra.NoArgs,
		RunE: a.withLab(false, func(cmd *cobra.Command, top *topology.Topology, _ []string) error {
			lab, key, err := a.labAndKey(cmd.Context(), top)
			if err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), provision.SSHConfig(lab, key))
			return nil
		}),
	}
}
