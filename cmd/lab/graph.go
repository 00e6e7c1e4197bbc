package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/labctl/lab/diagram"
	"github.com/labctl/lab/topology"
)

func newGraph(a *app) *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   "graph",
		Short: "Draw the lab: networks, roles and nodes, after edges and firewall rules (Mermaid or DOT)",
		Long: `Draw the lab: a box per network holding one per role, each node with its
address and provider; dashed edges for after, solid ones for what a firewall
lets in. Mermaid renders in GitHub and GitLab Markdown (put it in a
` + "```mermaid" + ` block); DOT is for Graphviz (lab graph --format dot | dot -Tsvg).`,
		Example: `  lab graph > lab.mmd
  lab graph --format dot | dot -Tsvg > lab.svg`,
		Args: cobra.NoArgs,
		// A drawing needs no step files: a lab whose files are built later draws.
		PreRun: func(*cobra.Command, []string) { a.missingSourcesOK = true },
		RunE: a.withLab(false, func(cmd *cobra.Command, top *topology.Topology, _ []string) error {
			if !slices.Contains(diagram.Formats, format) {
				return usagef("graph: --format %q: want %s", format, strings.Join(diagram.Formats, " or "))
			}
			_, lab, err := a.reader().Status(cmd.Context(), top)
			if err != nil {
				return err
			}
			out, err := diagram.Render(lab, format)
			if err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), out)
			return nil
		}),
	}
	c.Flags().StringVar(&format, "format", "mermaid", "mermaid or dot")
	return c
}
