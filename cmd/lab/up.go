package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/labctl/lab/engine"
	"github.com/labctl/lab/topology"
)

func newUp(a *app) *cobra.Command {
	var asJSON, force, forceFrom bool
	var wait time.Duration
	var from string
	c := &cobra.Command{
		Use:   "up",
		Short: "Create, start and provision the lab; scale it to the counts in the file",
		Args:  cobra.NoArgs,
		RunE: a.withLab(true, func(cmd *cobra.Command, top *topology.Topology, _ []string) error {
			ui := newProgress(cmd.ErrOrStderr(), cmd.OutOrStdout(), asJSON)
			e := a.engine(ui)
			e.LockWait = wait
			start := time.Now()
			name, err := resolveFrom(cmd.Context(), e, from)
			if err != nil {
				ui.Close()
				return err
			}
			opts := engine.UpOptions{Provision: force, From: name, Force: forceFrom}
			_, err = e.Up(cmd.Context(), top, opts)
			ui.Close()
			if err != nil {
				return withLogPaths(e, err)
			}
			if !asJSON {
				fmt.Fprintf(cmd.ErrOrStderr(), "lab %s is up (%.1fs)\n", top.Name, time.Since(start).Seconds())
			}
			return nil
		}),
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print one JSON event per line on stdout")
	c.Flags().BoolVar(&force, "provision", false, "run every provisioning step again")
	c.Flags().StringVar(&from, "from", "", "make a fresh lab from a whole-lab snapshot: its NAME, or a FILE from lab snapshot export")
	c.Flags().BoolVar(&forceFrom, "force", false, "with --from: take the snapshot even where the lab file differs (changed steps run)")
	c.Flags().DurationVar(&wait, "wait-lock", 0, "wait this long for another lab command on this lab to finish (default: fail at once)")
	return c
}

// withLogPaths adds to each failed node the path of its full log.
func withLogPaths(e *engine.Engine, err error) error {
	var ue *engine.UpError
	if errors.As(err, &ue) {
		for i, f := range ue.Failed {
			if p := e.LogPath(f.Node); fileExists(p) {
				ue.Failed[i].Err = fmt.Errorf("%w\n  full log: %s", f.Err, p)
			}
		}
	}
	return err
}
