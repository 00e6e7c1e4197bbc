package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/labctl/lab/engine"
	"github.com/labctl/lab/providers"
	"github.com/labctl/lab/topology"
)

type logsOptions struct {
	follow, provision bool
	lines             int
	unit, since, role string
}

func newLogs(a *app) *cobra.Command {
	var o logsOptions
	c := &cobra.Command{
		Use:   "logs [NODE | --role ROLE]",
		Short: "Print a node's journal (or its provisioning log), following it with -f",
		Example: `  lab logs pg1 -n 50
  lab logs pg1 -f --unit postgresql@15-main
  lab logs nginx1 --provision
  lab logs --role nginx --since 10m`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if (o.role == "") == (len(args) == 0) || len(args) > 1 {
				return usagef("logs: name one node, or --role ROLE")
			}
			if o.lines < 0 {
				return usagef("logs: -n %d: want 0 (all) or more", o.lines)
			}
			top, err := a.loadTopology()
			if err != nil {
				return err
			}
			if err := needHost(); err != nil {
				return err
			}
			if o.role != "" && top.RoleByName(o.role) == nil {
				return usagef("logs: no role %q in %s", o.role, top.File)
			}
			err = runLogs(cmd, a, top, args, o)
			if cmd.Context().Err() != nil && !errors.As(err, new(exitStatus)) {
				return nil // Ctrl-C ends a follow
			}
			return err
		},
	}
	f := c.Flags()
	f.BoolVar(&o.follow, "follow", false, "keep printing new lines until Ctrl-C (-f after logs; the lab file then goes before it: lab -f FILE logs NODE -f)")
	f.IntVarP(&o.lines, "lines", "n", 100, "print the last N lines (0: all)")
	f.StringVar(&o.unit, "unit", "", "only this systemd unit's lines")
	f.StringVar(&o.since, "since", "", "only lines since then: a duration back (10m, 2h) or a time journalctl reads (\"2026-12-01 10:00\", today)")
	f.StringVar(&o.role, "role", "", "every node of this role, interleaved, each line prefixed with its node")
	f.BoolVar(&o.provision, "provision", false, "the node's provisioning log (kept on the host) instead of its journal")
	return c
}

func runLogs(cmd *cobra.Command, a *app, top *topology.Topology, args []string, o logsOptions) error {
	e := a.engine(nil)
	nodes := args
	if o.role != "" {
		nodes = top.RoleByName(o.role).Names()
	}
	if o.provision {
		return provisionLogs(cmd.Context(), e, top, nodes, o, cmd.OutOrStdout())
	}
	if o.role == "" {
		t, err := e.Target(cmd.Context(), top, nodes[0])
		if err != nil {
			return err
		}
		code, err := journal(cmd.Context(), t, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		if err == nil && code != 0 {
			return exitWith(code)
		}
		return err
	}
	return roleJournals(cmd.Context(), e, top, nodes, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
}

// roleJournals prints the journals of a role's nodes at once, each line
// prefixed with its node.
func roleJournals(ctx context.Context, e *engine.Engine, top *topology.Topology, nodes []string, o logsOptions, stdout, stderr io.Writer) error {
	out, flush := prefixers(nodes, stdout, stderr)
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() {
			ow, ew := out(n)
			t, err := e.Target(ctx, top, n)
			if err != nil {
				errs[i] = err
				return
			}
			code, err := journal(ctx, t, o, ow, ew)
			if err == nil && code != 0 {
				err = fmt.Errorf("%s: journalctl: exit %d", n, code)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	flush()
	return errors.Join(errs...)
}

// journal prints one node's journal. A provider that passes output on
// only once a command ends (a VM's guest agent) is followed by asking
// again every second for what came after the last line's cursor.
func journal(ctx context.Context, t *engine.Target, o logsOptions, stdout, stderr io.Writer) (int, error) {
	if !o.follow || t.Provider.Info().StreamsOutput {
		return t.Provider.Exec(ctx, t.Node, journalCommand(o), providers.ExecIO{Stdout: stdout, Stderr: stderr})
	}
	once := o
	once.follow = false
	cursor := ""
	for {
		command := append(journalCommand(once), "--show-cursor")
		if cursor != "" {
			command = append(journalCommand(logsOptions{unit: o.unit}), "--show-cursor", "--after-cursor", cursor)
		}
		var out bytes.Buffer
		code, err := t.Provider.Exec(ctx, t.Node, command, providers.ExecIO{Stdout: &out, Stderr: stderr})
		if err != nil || code != 0 {
			return code, err
		}
		for _, line := range strings.SplitAfter(out.String(), "\n") {
			switch {
			case strings.HasPrefix(line, "-- cursor: "):
				cursor = strings.TrimSpace(strings.TrimPrefix(line, "-- cursor: "))
			case line == "" || strings.HasPrefix(line, "-- No entries --"):
			default:
				fmt.Fprint(stdout, line)
			}
		}
		select {
		case <-ctx.Done():
			return 0, nil
		case <-time.After(time.Second):
		}
	}
}

// journalCommand is the journalctl a node runs for these options.
func journalCommand(o logsOptions) []string {
	c := []string{"journalctl", "--no-pager"}
	if o.lines > 0 {
		c = append(c, "-n", strconv.Itoa(o.lines))
	}
	if o.unit != "" {
		c = append(c, "-u", o.unit)
	}
	if o.since != "" {
		since := o.since
		if d, err := time.ParseDuration(o.since); err == nil {
			since = fmt.Sprintf("-%ds", int(d.Seconds()))
		}
		c = append(c, "--since", since)
	}
	if o.follow {
		c = append(c, "-f")
	}
	return c
}

// provisionLogs prints the nodes' provisioning logs, which lab keeps beside
// the lab's state; with -f it prints what is added until Ctrl-C.
func provisionLogs(ctx context.Context, e *engine.Engine, top *topology.Topology, nodes []string, o logsOptions, w io.Writer) error {
	for _, n := range nodes {
		if !top.HasNode(n) {
			return usagef("logs: no node %q in lab %s", n, top.Name)
		}
	}
	offsets := map[string]int64{}
	for {
		for _, n := range nodes {
			prefix := ""
			if o.role != "" {
				prefix = n + " | "
			}
			off, err := printFrom(e.LogPath(n), offsets[n], prefix, !o.follow, w)
			if err != nil {
				return err
			}
			offsets[n] = off
		}
		if !o.follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// printFrom prints a file from an offset, prefixing each line, and returns
// where it stopped: at the end of the last whole line, or of the file when
// it is the last read. A missing file is empty: the node has not been
// provisioned yet.
func printFrom(path string, off int64, prefix string, last bool, w io.Writer) (int64, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return off, nil
	}
	if err != nil {
		return off, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() < off {
		off = 0 // the log was started again
	}
	b, err := io.ReadAll(io.NewSectionReader(f, off, 1<<40))
	if err != nil {
		return off, err
	}
	done := 0
	for i, c := range b {
		if c == '\n' {
			fmt.Fprintf(w, "%s%s", prefix, b[done:i+1])
			done = i + 1
		}
	}
	if last && done < len(b) {
		fmt.Fprintf(w, "%s%s\n", prefix, b[done:])
		done = len(b)
	}
	return off + int64(done), nil
}

// followArgs lets -f after `logs` mean --follow, as in journalctl, docker
// and kubectl, while -f before the command stays the lab file.
func followArgs(args []string) []string {
	out := append([]string(nil), args...)
	cmd := -1
	for i := 0; i < len(out); i++ {
		a := out[i]
		switch {
		case a == "--":
			return out
		case cmd >= 0 && a == "-f":
			out[i] = "--follow"
		case a == "-f" || a == "--file" || a == "--config":
			i++ // the flag's value
		case strings.HasPrefix(a, "-"):
		case cmd < 0:
			if a != "logs" {
				return out
			}
			cmd = i
		}
	}
	return out
}
