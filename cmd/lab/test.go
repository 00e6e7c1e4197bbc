package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/labctl/lab/engine"
	"github.com/labctl/lab/testrun"
	"github.com/labctl/lab/topology"
)

// Exit codes of lab test beyond exitOK, exitFailed (a test failed) and
// exitUsage.
const (
	exitNotUp       = 3   // the lab never came up
	exitInterrupted = 130 // Ctrl-C or SIGTERM
)

func newTest(a *app) *cobra.Command {
	var o testrun.Options
	c := &cobra.Command{
		Use:   "test [flags] [-- COMMAND ARGS…]",
		Short: "Bring the lab up, run its tests, keep what explains a failure, destroy it: CI in one command",
		Long: `Bring the lab up (or start it --from a snapshot) and wait for every health
check; run the tests (the command after --, on the host, or the lab file's
tests: list, in order, every one even after one fails); collect artifacts
(each node's journal and provisioning log, lab status, the run's events, the
lab file, each test's output: always when the run did not pass, and on
success only into an --artifacts folder you name); write --junit; destroy the
lab (not with --keep, nor with --keep-on-failure after a failure).

Host commands run in the lab file's folder with the lab's LAB_* facts
(LAB_ROLE_<ROLE>_IPS, LAB_ROLE_<ROLE>_IPS_FIRST, LAB_NODE_<NODE>_IP, ...),
LAB_INVENTORY (an Ansible inventory) and LAB_SSH_CONFIG. A test with node:
runs like lab exec NODE -- sh -c RUN.

Exit: 0 every test passed, 1 a test failed, 2 bad lab file or usage, 3 the
lab never came up (the artifacts say why), 130 interrupted (Ctrl-C or
SIGTERM: artifacts are collected and the lab destroyed all the same).`,
		Example: `  lab test
  lab test --junit report.xml --artifacts out/
  lab test --from todomvc.snap --keep-on-failure -- go test ./e2e/...`,
		RunE: a.withLab(true, func(cmd *cobra.Command, top *topology.Topology, args []string) error {
			if dash := cmd.ArgsLenAtDash(); dash > 0 || (dash < 0 && len(args) > 0) {
				return usagef("test: put the command after --: lab test -- COMMAND ARGS")
			}
			o.Argv, o.Top = args, top
			if len(o.Argv) == 0 && len(top.Tests) == 0 {
				return usagef("test: nothing to run: give the lab file a tests: list, or a command after --")
			}
			if o.Timeout <= 0 {
				return usagef("test: --timeout %s: want a positive duration such as 20m", o.Timeout)
			}
			return runTest(cmd, a, o)
		}),
	}
	f := c.Flags()
	f.StringVar(&o.From, "from", "", "start from a whole-lab snapshot: its NAME, or a FILE from lab snapshot export")
	f.BoolVar(&o.Keep, "keep", false, "leave the lab up afterwards")
	f.BoolVar(&o.KeepOnFailure, "keep-on-failure", false, "leave the lab up when the run did not pass")
	f.StringVar(&o.Artifacts, "artifacts", "", "put the artifacts here, even on success (default .lab/artifacts/TIME, on failure only)")
	f.StringVar(&o.JUnit, "junit", "", "write a JUnit XML report here")
	f.DurationVar(&o.Timeout, "timeout", 20*time.Minute, "for the whole run, up included")
	return c
}

func runTest(cmd *cobra.Command, a *app, o testrun.Options) error {
	ui := newProgress(cmd.ErrOrStderr(), cmd.OutOrStdout(), false)
	e := a.engine(ui)
	o.Engine, o.UI, o.UpDone, o.Out = e, ui, ui.Close, cmd.OutOrStdout()
	had := map[string]bool{}
	if snaps, err := e.Snapshots(); err == nil {
		for _, s := range snaps {
			had[s.Name] = true
		}
	}
	from, err := resolveFrom(cmd.Context(), e, o.From)
	if err != nil {
		ui.Close()
		return err
	}
	o.From, o.DropFrom = from, from != o.From && !had[from]
	res, err := testrun.Run(cmd.Context(), o)
	if err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "lab: %v\n", err)
	}
	switch res.Outcome {
	case testrun.Passed:
		if err != nil {
			return exitWith(exitFailed)
		}
		return nil
	case testrun.Failed:
		return exitWith(exitFailed)
	case testrun.BadLab:
		fmt.Fprintf(cmd.ErrOrStderr(), "lab: %v\n", res.UpErr)
		return exitWith(exitUsage)
	case testrun.Interrupted:
		return exitWith(exitInterrupted)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "lab: %v\n", withLogPaths(e, res.UpErr))
	return exitWith(exitNotUp)
}

// resolveFrom turns --from FILE (a path: it has a / or a .) into the name
// of the snapshot it imports; a NAME stays as it is.
func resolveFrom(ctx context.Context, e *engine.Engine, from string) (string, error) {
	if from == "" || !fileExists(from) || !strings.ContainsAny(from, "/.") {
		return from, nil
	}
	snap, err := e.SnapshotImport(ctx, from, true)
	if err != nil {
		return "", err
	}
	return snap.Name, nil
}
