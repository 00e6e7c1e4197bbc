package engine

import (
	"errors"
	"fmt"
	"strings"
)

// UnknownNodeError is a node name the lab does not have: the user's
// mistake (exit 2), not a failed operation.
type UnknownNodeError struct{ msg string }

func (e *UnknownNodeError) Error() string { return e.msg }

// NodeError is one node's failure.
type NodeError struct {
	Node string
	Err  error
}

// UpError lists what failed and what was left undone.
type UpError struct {
	Failed  []NodeError
	Skipped []string
}

func (e *UpError) Error() string {
	var b strings.Builder
	for i, f := range e.Failed {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(f.Err.Error())
	}
	if len(e.Skipped) > 0 {
		fmt.Fprintf(&b, "\nnot provisioned because something they come after failed: %s", strings.Join(e.Skipped, ", "))
	}
	return b.String()
}

// add records one task's result: a failure, or a node skipped because
// something it comes after failed (reported once per node).
func (e *UpError) add(node string, err error) {
	switch {
	case err == nil:
	case errors.Is(err, ErrSkipped):
		for _, s := range e.Skipped {
			if s == node {
				return
			}
		}
		e.Skipped = append(e.Skipped, node)
	default:
		e.Failed = append(e.Failed, NodeError{Node: node, Err: err})
	}
}

func (e *UpError) orNil() error {
	if len(e.Failed) > 0 || len(e.Skipped) > 0 {
		return e
	}
	return nil
}
