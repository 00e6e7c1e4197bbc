package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func newRoot() *cobra.Command {
	a := &app{}
	root := &cobra.Command{
		Use:   "lab",
		Short: "Multi-node labs from one topology file, on LXC containers and libvirt VMs",
		Long: `lab turns one topology file (lab.yaml) into a running, reproducible cluster:
a private network with fixed addresses and DNS names, nodes started in parallel
from cached images, provisioned in dependency order, health-checked.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			s, err := loadSettings(cmd)
			a.set = s
			return err
		},
	}
	root.PersistentFlags().StringP("file", "f", "lab.yaml", "lab file (or LAB_FILE)")
	root.PersistentFlags().String("config", "", "user config file (default ~/.config/lab/config.yaml)")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w (see %s --help)", err, c.CommandPath())}
	})
	root.AddCommand(
		newUp(a), newStatus(a), newPlan(a), newValidate(a), newExec(a), newSSH(a), newProvision(a),
		newHalt(a), newDestroy(a), newInventory(a), newSSHConfig(a), newImage(a), newVersion(),
		newFault(a), newDelayLine(), newSnapshot(a), newClone(a), newGraph(a), newLogs(a), newTest(a), newHostLimits(), newHost(),
	)
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			strictCompletion(c)
		}
		c.Args = wrapArgs(c.Args)
	}
	return root
}

// strictCompletion makes `lab completion tcsh` an error, not a help page.
func strictCompletion(c *cobra.Command) {
	c.Args = cobra.ArbitraryArgs
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usagef("completion: no shell %q (have: bash, zsh, fish, powershell)", args[0])
		}
		return cmd.Help()
	}
}

// wrapArgs makes argument-count errors usage errors (exit 2).
func wrapArgs(v cobra.PositionalArgs) cobra.PositionalArgs {
	if v == nil {
		return nil
	}
	return func(cmd *cobra.Command, args []string) error {
		if err := v(cmd, args); err != nil {
			return usageError{fmt.Errorf("%s: %w", cmd.CommandPath(), err)}
		}
		return nil
	}
}
