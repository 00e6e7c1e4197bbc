package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

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
	var nodes int
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
the kernel forgets at reboot: run this again after one; and the kernel
limits (lab host-limits) raised for --nodes containers at once, which a
user's lab up cannot raise itself. It changes only what is missing.
--remove takes back the group and the cgroups; the id ranges stay, since
other tools use them too.`,
		Example: `  sudo lab host setup --user alice
  sudo lab host setup --user alice --remove`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return usagef("host setup: --user NAME: the user to set up")
			}
			if nodes < 0 {
				return usagef("host setup: --nodes %d: want 0 or more", nodes)
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
			if err := u.Setup(cmd.OutOrStdout(), filepath.Join(filepath.Dir(exe), "lab-net")); err != nil {
				return err
			}
			return raiseForUsers(cmd.OutOrStdout(), nodes)
		},
	}
	c.Flags().IntVar(&nodes, "nodes", 30, "containers the user's labs run at once: the kernel limits are raised for them")
	c.Flags().StringVar(&name, "user", "", "the user to set up")
	c.Flags().BoolVar(&remove, "remove", false, "take back the group and the cgroups")
	return c
}

// raiseForUsers raises the kernel limits users' labs need for nodes
// containers at once: a user's lab up checks them but cannot raise them
// (root's raises them itself).
func raiseForUsers(out io.Writer, nodes int) error {
	low, err := host.Default.Check(nodes)
	if err != nil {
		return err
	}
	if len(low) == 0 {
		fmt.Fprintf(out, "kernel limits: enough for %d containers at once\n", nodes)
		return nil
	}
	if err := host.Default.Raise(low); err != nil {
		return err
	}
	var what []string
	for _, l := range low {
		what = append(what, l.String())
	}
	fmt.Fprintf(out, "kernel limits: raised for %d containers at once (%s); lab host-limits --write keeps them past a reboot\n", nodes, strings.Join(what, ", "))
	return nil
}
