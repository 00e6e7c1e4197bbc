package main

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/labctl/lab/host"
)

func newHost() *cobra.Command {
	c := &cobra.Command{
		Use:   "host",
		Short: "Prepare this machine for lab (as root, once)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	c.AddCommand(newHostSetup())
	return c
}

func newHostSetup() *cobra.Command {
	var name string
	var remove bool
	c := &cobra.Command{
		Use:   "setup --user NAME",
		Short: "Grant a user what running labs without root takes",
		Long: `Grant a user, as root and once, what running labs without root takes:
membership of the lab group; a range of 65536 subordinate uids and gids
(/etc/subuid, /etc/subgid) that root in the user's nodes maps to, through
Debian's newuidmap and newgidmap (package uidmap); the network helper
(lab-net, beside lab: make build makes both), which makes the user's lab
networks and nothing else, installed root:lab setuid in
` + host.HelperPath + `; and, where PID 1 is not
systemd, a cgroup of each v1 hierarchy owned by the user (lab-NAME), which
the kernel forgets at reboot: run this again after one. It changes only
what is missing. --remove takes back the group and the cgroups; the id
ranges stay, since other tools use them too.`,
		Example: `  sudo lab host setup --user alice
  sudo lab host setup --user alice --remove`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return usagef("host setup: --user NAME: the user to set up")
			}
			if os.Geteuid() != 0 {
				return errors.New("host setup: grants what only root can: run it as root")
			}
			u, err := host.LookupUser(name)
			if err != nil {
				return err
			}
			if remove {
				return u.Remove(cmd.OutOrStdout())
			}
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			return u.Setup(cmd.OutOrStdout(), filepath.Join(filepath.Dir(exe), "lab-net"))
		},
	}
	c.Flags().StringVar(&name, "user", "", "the user to set up")
	c.Flags().BoolVar(&remove, "remove", false, "take back the group and the cgroups")
	return c
}
