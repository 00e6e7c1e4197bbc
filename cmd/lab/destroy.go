package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/labctl/lab/engine"
	"github.com/labctl/lab/topology"
)

func newDestroy(a *app) *cobra.Command {
	var wait time.Duration
	var name string
	var orphans, dryRun, snapshots bool
	c := &cobra.Command{
		Use:   "destroy [--name NAME | --all-orphans]",
		Short: "Remove every node, network and record of the lab; leaves nothing behind",
		Long: `Remove every node, network and record of the lab, from its state alone: a
broken lab file or a half-finished up never stops it.

When the state folder is gone (deleted, or a test's temporary folder), --name
NAME finds what a lab of that name made on this machine (containers, VMs and
their disks, bridges with their dnsmasq and files, nftables tables, port
forwards), shows it, and removes it. --all-orphans does that for every lab
whose state folder no longer exists. Neither touches a lab whose state is
still there: run lab destroy in its folder. --dry-run only shows.`,
		Example: `  lab destroy
  lab destroy --name todomvc --dry-run
  lab destroy --all-orphans`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name != "" && orphans {
				return usagef("destroy: give --name or --all-orphans, not both")
			}
			if dryRun && name == "" && !orphans {
				return usagef("destroy: --dry-run goes with --name or --all-orphans")
			}
			if name != "" && !topology.ValidName(name) {
				return usagef("destroy: --name %q is not a lab name (lowercase letters, digits and '-')", name)
			}
			if !dryRun {
				if err := needHost(); err != nil {
					return err
				}
			}
			ui := newProgress(cmd.ErrOrStderr(), cmd.OutOrStdout(), false)
			defer ui.Close()
			if name != "" || orphans {
				return destroyLeftovers(cmd, a.engine(ui), name, dryRun)
			}
			// Destroy works from the state alone: a broken lab file must not stop it.
			lab := ""
			if top, err := a.loadTopology(); err == nil {
				lab = top.Name
			}
			e := a.engine(ui)
			e.LockWait = wait
			start := time.Now()
			if err := e.Destroy(cmd.Context(), lab, snapshots); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "destroyed (%.2fs)\n", time.Since(start).Seconds())
			return nil
		},
	}
	c.Flags().DurationVar(&wait, "wait-lock", 0, "wait this long for another lab command on this lab to finish")
	c.Flags().StringVar(&name, "name", "", "remove what lab NAME made on this machine, when its state folder is gone")
	c.Flags().BoolVar(&orphans, "all-orphans", false, "remove what every lab whose state folder is gone left on this machine")
	c.Flags().BoolVar(&snapshots, "snapshots", false, "remove the lab's saved snapshots too (kept by default)")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "with --name or --all-orphans: show what would be removed, remove nothing")
	return c
}

func destroyLeftovers(cmd *cobra.Command, e *engine.Engine, name string, dryRun bool) error {
	found, err := e.FindLeftovers(cmd.Context(), name)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	what := "labs whose state folder is gone"
	if name != "" {
		what = "lab " + name
	} else {
		orphans := found[:0]
		for _, l := range found {
			if !l.Live {
				orphans = append(orphans, l)
			}
		}
		found = orphans
	}
	if len(found) == 0 {
		fmt.Fprintf(out, "nothing of %s on this machine\n", what)
		return nil
	}
	fmt.Fprintf(out, "found of %s:\n", what)
	live := printLeftovers(out, found)
	if !dryRun {
		if err := e.RemoveLeftovers(cmd.Context(), found); err != nil {
			return err
		}
		fmt.Fprintf(out, "removed %d\n", len(found)-live)
	}
	if live > 0 && name != "" {
		return fmt.Errorf("%d of lab %s still recorded in a state folder were left alone: run lab destroy there", live, name)
	}
	return nil
}

func printLeftovers(w io.Writer, list []engine.Leftover) (live int) {
	for _, l := range list {
		fmt.Fprintf(w, "  %s\n", l)
		if l.Live {
			live++
		}
	}
	return live
}
