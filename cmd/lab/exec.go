package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/labctl/lab/engine"
	"github.com/labctl/lab/providers"
	"github.com/labctl/lab/topology"
)

func newExec(a *app) *cobra.Command {
	var role string
	c := &cobra.Command{
		Use:   "exec [NODE | --role ROLE] -- COMMAND [ARGS…]",
		Short: "Run a command in a node (or every node of a role) with its output and exit code",
		Example: `  lab exec pg1 -- psql -c 'select 1'
  lab exec --role nginx -- systemctl reload nginx`,
		RunE: func(cmd *cobra.Command, args []string) error {
			nodes, command := splitExec(cmd, args, role)
			if len(command) == 0 {
				return usagef("exec: no command: lab exec NODE -- COMMAND")
			}
			if (role == "") == (len(nodes) == 0) || len(nodes) > 1 {
				return usagef("exec: name one node, or --role ROLE")
			}
			top, err := a.loadTopology()
			if err != nil {
				return err
			}
			if err := needHost(); err != nil {
				return err
			}
			if role != "" {
				if top.RoleByName(role) == nil {
					return usagef("exec: no role %q in %s", role, top.File)
				}
				return execRole(cmd.Context(), a.engine(nil), top, role, command, cmd.OutOrStdout(), cmd.ErrOrStderr())
			}
			t, err := a.engine(nil).Target(cmd.Context(), top, nodes[0])
			if err != nil {
				return err
			}
			code, err := t.Provider.Exec(cmd.Context(), t.Node, command, providers.ExecIO{Stdin: os.Stdin, Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr(), Env: t.Env})
			if cmd.Context().Err() != nil {
				return exitWith(130) // Ctrl-C or SIGTERM: the command was ended in the node
			}
			if err != nil {
				return err
			}
			if code != 0 {
				return exitWith(code)
			}
			return nil
		},
	}
	c.Flags().StringVar(&role, "role", "", "run on every node of this role, in parallel")
	return c
}

// splitExec splits `NODE -- CMD…` (or `--role R -- CMD…`) into nodes and the command.
func splitExec(cmd *cobra.Command, args []string, role string) (nodes, command []string) {
	dash := cmd.ArgsLenAtDash()
	switch {
	case dash >= 0:
		return args[:dash], args[dash:]
	case role == "" && len(args) > 0:
		return args[:1], args[1:]
	}
	return nil, args
}

// exitWith makes lab exit with a command's own exit code.
type exitStatus struct{ code int }

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", e.code) }
func exitWith(code int) error      { return exitStatus{code} }

// execRole runs the command on a role's nodes, output prefixed by node.
func execRole(ctx context.Context, e *engine.Engine, top *topology.Topology, role string, command []string, stdout, stderr io.Writer) error {
	out, flush := prefixers(top.RoleByName(role).Names(), stdout, stderr)
	results, err := e.ExecRole(ctx, top, role, command, out)
	if err != nil {
		return err
	}
	flush()
	var failed []string
	for _, r := range results {
		switch {
		case r.Err != nil:
			failed = append(failed, r.Node+" ("+r.Err.Error()+")")
		case r.Code != 0:
			failed = append(failed, fmt.Sprintf("%s (exit %d)", r.Node, r.Code))
		}
	}
	if len(failed) > 0 {
		sort.Strings(failed)
		return fmt.Errorf("failed on %d of %d %s nodes: %s", len(failed), len(results), role, strings.Join(failed, ", "))
	}
	return nil
}

// prefixers gives each of nodes a stdout and a stderr writer that prefix
// every line with its name, padded to the longest; flush writes the last
// lines that had no newline, once every writer is done.
func prefixers(nodes []string, stdout, stderr io.Writer) (out func(node string) (io.Writer, io.Writer), flush func()) {
	var mu sync.Mutex
	width := 0
	for _, n := range nodes {
		width = max(width, len(n))
	}
	var writers []*prefixWriter
	out = func(node string) (io.Writer, io.Writer) {
		name := fmt.Sprintf("%-*s", width, node)
		ow, ew := &prefixWriter{mu: &mu, w: stdout, prefix: name}, &prefixWriter{mu: &mu, w: stderr, prefix: name}
		mu.Lock()
		writers = append(writers, ow, ew)
		mu.Unlock()
		return ow, ew
	}
	flush = func() {
		mu.Lock()
		ws := append([]*prefixWriter(nil), writers...)
		mu.Unlock()
		for _, w := range ws {
			w.Flush()
		}
	}
	return out, flush
}

// prefixWriter prefixes every line with the node's name.
type prefixWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	prefix string
	buf    bytes.Buffer
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.buf.Write(b)
	for {
		line, err := p.buf.ReadBytes('\n')
		if err != nil {
			p.buf.Write(line)
			break
		}
		p.mu.Lock()
		fmt.Fprintf(p.w, "%s | %s", p.prefix, line)
		p.mu.Unlock()
	}
	return len(b), nil
}

// Flush writes a last line that had no newline.
func (p *prefixWriter) Flush() {
	if p.buf.Len() > 0 {
		p.mu.Lock()
		fmt.Fprintf(p.w, "%s | %s\n", p.prefix, p.buf.String())
		p.mu.Unlock()
		p.buf.Reset()
	}
}
