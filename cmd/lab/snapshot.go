package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/labctl/lab/topology"
)

func newSnapshot(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "snapshot",
		Short: "Save and restore nodes or the whole lab; export a snapshot as one file for a CI cache",
		Long: `A whole-lab snapshot freezes every running node before the first is copied and
thaws them after the last, so the lab comes back as one moment in time. A
container's snapshot is its overlay's upper layer, a VM's a copy of its qcow2
overlay: never the shared image. Snapshots live in .lab/snapshots; lab destroy
keeps them unless --snapshots.`,
		Example: `  lab snapshot save provisioned
  lab snapshot restore provisioned
  lab snapshot save before-upgrade pg1
  lab snapshot export provisioned lab.snap && lab up --from lab.snap`,
	}
	c.AddCommand(newSnapshotSave(a), newSnapshotRestore(a), newSnapshotList(a), newSnapshotRm(a), newSnapshotExport(a), newSnapshotImport(a))
	return c
}

func newSnapshotSave(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "save NAME [NODE…]",
		Short: "Save the named nodes, or (none named) the whole lab, consistent across nodes",
		Args:  cobra.MinimumNArgs(1),
		RunE: a.withLab(true, func(cmd *cobra.Command, top *topology.Topology, args []string) error {
			ui := newProgress(cmd.ErrOrStderr(), cmd.OutOrStdout(), false)
			start := time.Now()
			snap, err := a.engine(ui).SnapshotSave(cmd.Context(), top, args[0], args[1:])
			ui.Close()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "saved %s: %s, %d MB, nodes frozen %.2fs (%.2fs in all)\n", snap.Name, strings.Join(snap.Nodes, " "), snap.Size>>20, snap.Frozen, time.Since(start).Seconds())
			return nil
		}),
	}
}

func newSnapshotRestore(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "restore NAME [NODE…]",
		Short: "Put nodes (none named: every node of the snapshot) back as saved",
		Args:  cobra.MinimumNArgs(1),
		RunE: a.withLab(true, func(cmd *cobra.Command, top *topology.Topology, args []string) error {
			ui := newProgress(cmd.ErrOrStderr(), cmd.OutOrStdout(), false)
			start := time.Now()
			err := a.engine(ui).SnapshotRestore(cmd.Context(), top, args[0], args[1:])
			ui.Close()
			if err == nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "restored %s (%.2fs)\n", args[0], time.Since(start).Seconds())
			}
			return err
		}),
	}
}

func newSnapshotList(a *app) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "list [--json]",
		Short: "List the lab's snapshots: name, nodes, size, when, lab file hash",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			snaps, err := a.reader().Snapshots()
			if err != nil {
				return err
			}
			if asJSON {
				type row struct {
					Name     string    `json:"name"`
					Lab      string    `json:"lab"`
					Whole    bool      `json:"whole"`
					Nodes    []string  `json:"nodes"`
					Size     int64     `json:"size"`
					Created  time.Time `json:"created"`
					FileHash string    `json:"file_hash"`
					Frozen   float64   `json:"frozen_seconds"`
				}
				rows := []row{}
				for _, s := range snaps {
					rows = append(rows, row{s.Name, s.Lab, s.Whole, s.Nodes, s.Size, s.Created, s.FileHash, s.Frozen})
				}
				return printJSON(cmd.OutOrStdout(), map[string]any{"version": 1, "snapshots": rows})
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tNODES\tSIZE\tCREATED\tLAB FILE")
			for _, s := range snaps {
				nodes := strings.Join(s.Nodes, ",")
				if s.Whole {
					nodes = "all: " + nodes
				}
				fmt.Fprintf(w, "%s\t%s\t%dM\t%s\t%s\n", s.Name, nodes, s.Size>>20, s.Created.Local().Format(time.DateTime), s.FileHash)
			}
			return w.Flush()
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func newSnapshotRm(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME…",
		Short: "Remove snapshots",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := needHost(); err != nil {
				return err
			}
			for _, n := range args {
				if err := a.engine(nil).SnapshotRemove(n); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), "removed", n)
			}
			return nil
		},
	}
}

func newSnapshotExport(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "export NAME FILE",
		Short: "Write a snapshot as one file (tar + zstd), for a CI cache",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := needHost(); err != nil {
				return err
			}
			return a.engine(nil).SnapshotExport(cmd.Context(), args[0], args[1])
		},
	}
}

func newSnapshotImport(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "import FILE",
		Short: "Read a snapshot file made by lab snapshot export",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := needHost(); err != nil {
				return err
			}
			snap, err := a.engine(nil).SnapshotImport(cmd.Context(), args[0], false)
			if err == nil {
				fmt.Fprintln(cmd.OutOrStdout(), snap.Name)
			}
			return err
		},
	}
}

func newClone(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "clone SRC DST",
		Short: "Give node DST (of the lab file, usually another role) SRC's disk, then DST's own identity and steps",
		Long: `DST takes SRC's disk contents: a running SRC is frozen for the copy (and
thawed after it), DST is made or stopped, started with the copy, gets its own
name, address, hosts and facts back, and runs its own role's steps that differ
from what ran on SRC. Both must use the same provider and image.`,
		Args: cobra.ExactArgs(2),
		RunE: a.withLab(true, func(cmd *cobra.Command, top *topology.Topology, args []string) error {
			ui := newProgress(cmd.ErrOrStderr(), cmd.OutOrStdout(), false)
			start := time.Now()
			err := a.engine(ui).Clone(cmd.Context(), top, args[0], args[1])
			ui.Close()
			if err == nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "%s is a clone of %s (%.1fs)\n", args[1], args[0], time.Since(start).Seconds())
			}
			return err
		}),
	}
}
