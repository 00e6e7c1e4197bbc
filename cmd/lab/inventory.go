package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/labctl/lab/provision"
	"github.com/labctl/lab/topology"
)

func newInventory(a *app) *cobra.Command {
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
		RunE: a.withLab(false, func(cmd *cobra.Command, top *topology.Topology, _ []string) error {
			lab, key, err := a.labAndKey(cmd.Context(), top)
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
			paths, err := a.reader().WriteHostFiles(lab)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), paths[name])
			return nil
		}),
	}
	c.Flags().BoolVar(&asINI, "ini", false, "INI instead of YAML")
	c.Flags().BoolVar(&path, "path", false, "write the inventory into .lab and print its path")
	return c
}

// labAndKey expands the lab as it exists (chosen subnets included) and finds
// its SSH key.
func (a *app) labAndKey(ctx context.Context, top *topology.Topology) (*topology.Lab, string, error) {
	e := a.reader()
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
