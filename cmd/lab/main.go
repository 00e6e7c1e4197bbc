// Command lab turns one topology file into a running multi-node lab.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/labctl/lab/engine"
	"github.com/labctl/lab/internal/userns"
	"github.com/labctl/lab/topology"
)

// Exit codes, documented in README.
const (
	exitOK     = 0
	exitFailed = 1 // the operation failed
	exitUsage  = 2 // bad usage or a bad topology
)

// usageError marks errors that are the user's input, not a failed operation.
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var es exitStatus
	if errors.As(err, &es) {
		return es.code
	}
	var ue usageError
	var unk *engine.UnknownNodeError
	var bad *engine.UsageError
	if errors.As(err, &ue) || errors.As(err, &unk) || errors.As(err, &bad) || topology.IsTopologyError(err) {
		return exitUsage
	}
	if strings.HasPrefix(err.Error(), "unknown command") {
		return exitUsage
	}
	return exitFailed
}

func main() {
	userns.Main() // lab run again in the user's namespace (lab without root) does only that
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRoot()
	root.SetArgs(followArgs(os.Args[1:]))
	err := root.ExecuteContext(ctx)
	var es exitStatus
	if err != nil && !errors.As(err, &es) {
		fmt.Fprintln(os.Stderr, "lab: "+strings.ReplaceAll(err.Error(), "\n", "\n  "))
	}
	os.Exit(exitCode(err))
}
