package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/labctl/lab/engine"
	"github.com/labctl/lab/topology"
)

func newImage(a *app) *cobra.Command {
	c := &cobra.Command{Use: "image", Short: "Build, list and remove cached node images"}
	c.AddCommand(newImageBuild(a), newImageList(a), newImageRm(a), newImagePrune(a))
	return c
}

func newImageBuild(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "build",
		Short: "Build the images the lab file's roles need",
		Args:  cobra.NoArgs,
		RunE: a.withLab(true, func(cmd *cobra.Command, top *topology.Topology, _ []string) error {
			log := engine.SinkFunc(func(ev engine.Event) {
				fmt.Fprintf(cmd.ErrOrStderr(), "[%6.1fs] %s\n", ev.Elapsed, ev.Message)
			})
			imgs, err := a.engine(log).BuildImages(cmd.Context(), top)
			for _, img := range imgs {
				if img != nil {
					fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\n", img.Key, strings.Join(img.Spec.Packages, ","))
				}
			}
			return err
		}),
	}
}

func newImageList(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List cached images",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			imgs, err := a.images().List()
			if err != nil {
				return err
			}
			use, err := a.images().Usage()
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "KEY\tOWN\tSHARED\tBUILT\tBUILD TIME\tPACKAGES")
			for _, i := range imgs {
				u := use[i.Key]
				fmt.Fprintf(w, "%s\t%dM\t%dM\t%s\t%.1fs\t%s\n", i.Key, u.Own>>20, u.Shared>>20, i.BuiltAt.Format(time.RFC3339), i.BuildTime.Seconds(), strings.Join(i.Spec.Packages, ","))
			}
			if err := w.Flush(); err != nil {
				return err
			}
			if len(imgs) > 1 {
				fmt.Fprintf(cmd.OutOrStdout(), "OWN is what only that image holds, SHARED what it holds with other images (hard links, counted once on disk)\n")
			}
			return nil
		},
	}
}

func newImageRm(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "rm KEY…",
		Short: "Remove cached images (nodes made from them must be destroyed first)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := needHost(); err != nil {
				return err
			}
			for _, k := range args {
				if err := a.images().Remove(k); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), "removed", k)
			}
			return nil
		},
	}
}

func newImagePrune(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "prune",
		Short: "Remove every cached image and downloaded .deb",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := needHost(); err != nil {
				return err
			}
			c := a.images()
			imgs, err := c.List()
			if err != nil {
				return err
			}
			for _, i := range imgs {
				if err := c.Remove(i.Key); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), "removed", i.Key)
			}
			return c.PruneDebs()
		},
	}
}
