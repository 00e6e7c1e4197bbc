package main

import (
	"github.com/spf13/cobra"

	"github.com/labctl/lab/topology"
)

func newProvision(a *app) *cobra.Command {
	var role string
	c := &cobra.Command{
		Use:   "provision [NODE…] [--role ROLE]",
		Short: "Run provisioning again on nodes (all, some, or one role), whatever the records say",
		RunE: a.withLab(true, func(cmd *cobra.Command, top *topology.Topology, args []string) error {
			if role != "" && top.RoleByName(role) == nil {
				return usagef("provision: no role %q in %s", role, top.File)
			}
			ui := newProgress(cmd.ErrOrStderr(), cmd.OutOrStdout(), false)
			e := a.engine(ui)
			err := e.Reprovision(cmd.Context(), top, args, role)
			ui.Close()
			return withLogPaths(e, err)
		}),
	}
	c.Flags().StringVar(&role, "role", "", "only the nodes of this role")
	return c
}
