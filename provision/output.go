package provision

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
)

// StepError is a failed step, with what a user needs to fix it.
type StepError struct {
	Node  string
	Step  string
	Code  int
	Tail  []string
	Cause error
}

func (e *StepError) Error() string {
	var b strings.Builder
	if e.Cause != nil {
		fmt.Fprintf(&b, "node %s: provision %s: %v", e.Node, e.Step, e.Cause)
	} else {
		fmt.Fprintf(&b, "node %s: provision %s: exit %d", e.Node, e.Step, e.Code)
	}
	if len(e.Tail) > 0 {
		b.WriteString("\n  last output:\n    " + strings.Join(e.Tail, "\n    "))
	}
	return b.String()
}

func (e *StepError) Unwrap() error { return e.Cause }

// lineSink writes output to the log, keeps the last lines, and reports each
// complete line as progress.
type lineSink struct {
	mu       sync.Mutex
	log      io.Writer
	progress func(string)
	partial  bytes.Buffer
	tail     []string
}

func (l *lineSink) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.log != nil {
		_, _ = l.log.Write(b)
	}
	l.partial.Write(b)
	for {
		line, err := l.partial.ReadString('\n')
		if err != nil {
			l.partial.Reset()
			l.partial.WriteString(line)
			break
		}
		l.line(strings.TrimRight(line, "\r\n"))
	}
	return len(b), nil
}

func (l *lineSink) line(s string) {
	l.tail = append(l.tail, s)
	if len(l.tail) > 15 {
		l.tail = l.tail[len(l.tail)-15:]
	}
	if l.progress != nil {
		l.progress(s)
	}
}

func (l *lineSink) flush() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.partial.Len() > 0 {
		l.line(l.partial.String())
		l.partial.Reset()
	}
	return append([]string(nil), l.tail...)
}
