package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/labctl/lab/providers"
)

func newVersion() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "version",
		Short: "Print lab's version and its providers (with --json, what each can do)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !asJSON {
				fmt.Fprintf(cmd.OutOrStdout(), "lab %s (providers: %s)\n", version, strings.Join(providers.Names(), ", "))
				return nil
			}
			caps := map[string]providers.Info{}
			for _, name := range providers.Names() {
				p, err := providers.New(name, providers.Config{ReadOnly: true})
				if err != nil {
					return err
				}
				caps[name] = p.Info()
			}
			return printJSON(cmd.OutOrStdout(), map[string]any{"version": 1, "lab": version, "providers": caps})
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}
