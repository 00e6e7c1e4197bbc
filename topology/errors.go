package topology

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// FieldError is one problem in a topology file, located by field path and,
// where known, line.
type FieldError struct {
	File string `json:"file"`
	Path string `json:"path"`
	Line int    `json:"line,omitempty"`
	Msg  string `json:"message"`
}

func (e FieldError) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Path == "" {
		return fmt.Sprintf("%s: %s", loc, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", loc, e.Path, e.Msg)
}

// Errors is every problem found in one file. Load returns it (as error) when
// it is not empty, so a user sees all their mistakes at once.
type Errors struct {
	File string
	List []FieldError
	// More counts the errors past MaxErrors, which are not kept.
	More int
}

// MaxErrors is how many errors of one file are kept and shown.
const MaxErrors = 50

func (e *Errors) add(path string, line int, msg string) {
	if len(e.List) >= MaxErrors {
		e.More++
		return
	}
	if len(msg) > 500 {
		i := 500
		for i > 0 && !utf8.RuneStart(msg[i]) {
			i--
		}
		msg = msg[:i] + "…"
	}
	e.List = append(e.List, FieldError{File: e.File, Path: Cut(path), Line: line, Msg: msg})
}

func (e *Errors) Error() string {
	var b strings.Builder
	for i, fe := range e.Sorted() {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(fe.Error())
	}
	if e.More > 0 {
		fmt.Fprintf(&b, "\n%s: … and %d more errors", e.File, e.More)
	}
	return b.String()
}

// Sorted returns the errors by line, those without a line last.
func (e *Errors) Sorted() []FieldError {
	l := append([]FieldError(nil), e.List...)
	sort.SliceStable(l, func(i, j int) bool {
		if l[i].Line != l[j].Line {
			// Errors without a line go last.
			if l[i].Line == 0 || l[j].Line == 0 {
				return l[j].Line == 0 && l[i].Line != 0
			}
			return l[i].Line < l[j].Line
		}
		return false
	})
	return l
}

func (e *Errors) orNil() error {
	if e == nil || len(e.List) == 0 {
		return nil
	}
	return e
}

// IsTopologyError tells whether err is a problem with the user's file (exit 2)
// rather than a failed operation.
func IsTopologyError(err error) bool {
	var te *Errors
	return errors.As(err, &te)
}
