package main

import (
	"context"
	"fmt"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/labctl/lab/engine"
	"github.com/labctl/lab/network"
	"github.com/labctl/lab/topology"
)

func newFault(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "fault",
		Short: "Break the lab on purpose: partition, delay, pause or kill nodes; list and heal faults",
		Long: `Faults are recorded in the lab's state with an id; lab fault heal ID undoes
exactly that one, lab up leaves them in force (lab status shows them), and
lab destroy removes them all.`,
		Example: `  lab fault partition pg1 pg2
  lab fault delay pg1 200ms --jitter 20ms --loss 5% --to nginx
  lab fault pause nginx2
  lab fault kill nginx2
  lab fault list
  lab fault heal f1 f2    # or --all`,
	}
	c.AddCommand(newFaultPartition(a), newFaultDelay(a), newFaultNode(a, engine.FaultPause, "freeze every process of a node (its health checks fail; heal thaws it, no reboot)"),
		newFaultNode(a, engine.FaultKill, "stop a node hard, with no clean shutdown (heal boots it again)"), newFaultList(a), newFaultHeal(a))
	return c
}

// applyFault runs one fault request and prints its id.
func (a *app) applyFault(cmd *cobra.Command, top *topology.Topology, r engine.FaultRequest) error {
	start := time.Now()
	f, err := a.engine(nil).Fault(cmd.Context(), top, r)
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s\n", f.ID)
	fmt.Fprintf(cmd.ErrOrStderr(), "fault %s: %s %s (%.3fs; lab fault heal %s)\n", f.ID, f.Kind, strings.Join(f.Targets, " "), time.Since(start).Seconds(), f.ID)
	return nil
}

func newFaultPartition(a *app) *cobra.Command {
	var oneway bool
	c := &cobra.Command{
		Use:   "partition A B [--oneway]",
		Short: "Drop traffic between two nodes, roles or networks (both ways unless --oneway: A → B only)",
		Args:  cobra.ExactArgs(2),
		RunE: a.withLab(true, func(cmd *cobra.Command, top *topology.Topology, args []string) error {
			return a.applyFault(cmd, top, engine.FaultRequest{Kind: engine.FaultPartition, Targets: args, OneWay: oneway})
		}),
	}
	c.Flags().BoolVar(&oneway, "oneway", false, "drop A → B only (B → A still passes)")
	return c
}

func newFaultDelay(a *app) *cobra.Command {
	var jitter time.Duration
	var loss, rate, to string
	c := &cobra.Command{
		Use:   "delay NODE DELAY [--jitter D] [--loss P%] [--rate R] [--to NODE|ROLE]",
		Short: "Slow down, thin out or throttle the traffic a node receives",
		Args:  cobra.ExactArgs(2),
		RunE: a.withLab(true, func(cmd *cobra.Command, top *topology.Topology, args []string) error {
			d, err := parseDelay(args[1], jitter, loss, rate)
			if err != nil {
				return err
			}
			return a.applyFault(cmd, top, engine.FaultRequest{Kind: engine.FaultDelay, Targets: args[:1], Delay: d, To: to})
		}),
	}
	c.Flags().DurationVar(&jitter, "jitter", 0, "vary the delay by up to this much")
	c.Flags().StringVar(&loss, "loss", "", "drop this share of the frames (5%)")
	c.Flags().StringVar(&rate, "rate", "", "limit the throughput (1mbit, 500kbit, 10mbps)")
	c.Flags().StringVar(&to, "to", "", "only the traffic from this node or role")
	return c
}

func parseDelay(delay string, jitter time.Duration, loss, rate string) (network.Delay, error) {
	d := network.Delay{Jitter: jitter}
	var err error
	if d.Delay, err = time.ParseDuration(delay); err != nil {
		return d, usagef("fault delay: %q: want a duration such as 200ms", delay)
	}
	if loss != "" {
		v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(loss), "%"), 64)
		if err != nil {
			return d, usagef("fault delay: --loss %q: want a share such as 5%%", loss)
		}
		d.Loss = v / 100
	}
	if rate != "" {
		if d.Rate, err = parseRate(rate); err != nil {
			return d, err
		}
	}
	return d, nil
}

// parseRate reads rates as tc writes them: bit, kbit, mbit, gbit (bits per
// second) and bps, kbps, mbps, gbps (bytes per second).
func parseRate(s string) (int64, error) {
	units := []struct {
		suffix string
		bits   float64
	}{{"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}, {"gbps", 8e9}, {"mbps", 8e6}, {"kbps", 8e3}, {"bps", 8}, {"bit", 1}}
	in := strings.ToLower(strings.TrimSpace(s))
	for _, u := range units {
		if num, ok := strings.CutSuffix(in, u.suffix); ok {
			v, err := strconv.ParseFloat(num, 64)
			if err == nil && v > 0 && v*u.bits < 1e12 {
				return int64(v * u.bits), nil
			}
		}
	}
	return 0, usagef("fault delay: --rate %q: want a rate such as 1mbit, 500kbit or 10mbps", s)
}

func newFaultNode(a *app, kind, short string) *cobra.Command {
	return &cobra.Command{
		Use:   kind + " NODE",
		Short: strings.ToUpper(short[:1]) + short[1:],
		Args:  cobra.ExactArgs(1),
		RunE: a.withLab(true, func(cmd *cobra.Command, top *topology.Topology, args []string) error {
			return a.applyFault(cmd, top, engine.FaultRequest{Kind: kind, Targets: args})
		}),
	}
}

func newFaultList(a *app) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "list [--json]",
		Short: "List the faults in force",
		Args:  cobra.NoArgs,
		RunE: a.withLab(false, func(cmd *cobra.Command, top *topology.Topology, _ []string) error {
			fs, err := a.reader().Faults(cmd.Context(), top)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), map[string]any{"version": 1, "faults": fs})
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tKIND\tTARGETS\tNODES\tSINCE\tPARAMS")
			for _, f := range fs {
				var params []string
				for _, k := range []string{"delay", "jitter", "loss", "rate", "to", "oneway"} {
					if v := f.Params[k]; v != "" && v != "0" && v != "0s" {
						params = append(params, k+"="+v)
					}
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", f.ID, f.Kind, strings.Join(f.Targets, " "), strings.Join(f.Nodes, ","), f.Since.Local().Format(time.TimeOnly), dash(strings.Join(params, " ")))
			}
			return w.Flush()
		}),
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func newFaultHeal(a *app) *cobra.Command {
	var all bool
	c := &cobra.Command{
		Use:   "heal [ID…|--all]",
		Short: "Undo faults: exactly the ones named, or every one",
		RunE: a.withLab(true, func(cmd *cobra.Command, top *topology.Topology, args []string) error {
			if all == (len(args) > 0) {
				return usagef("fault heal: name fault ids, or --all")
			}
			start := time.Now()
			healed, err := a.engine(nil).Heal(cmd.Context(), top, args, all)
			for _, id := range healed {
				fmt.Fprintln(cmd.OutOrStdout(), id)
			}
			if err == nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "healed %d (%.3fs)\n", len(healed), time.Since(start).Seconds())
			}
			return err
		}),
	}
	c.Flags().BoolVar(&all, "all", false, "heal every fault in force")
	return c
}

// newDelayLine is the delay line's process (lab starts it; not for people).
func newDelayLine() *cobra.Command {
	var d network.Delay
	var loss float64
	var ports []string
	c := &cobra.Command{
		Use:    "__delay-line",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d.Loss = loss
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return network.RunDelayLine(ctx, ports, d)
		},
	}
	c.Flags().DurationVar(&d.Delay, "delay", 0, "")
	c.Flags().DurationVar(&d.Jitter, "jitter", 0, "")
	c.Flags().Float64Var(&loss, "loss", 0, "")
	c.Flags().Int64Var(&d.Rate, "rate", 0, "")
	c.Flags().StringArrayVar(&ports, "port", nil, "")
	return c
}
