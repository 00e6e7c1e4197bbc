package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/labctl/lab/engine"
)

// progress shows engine events: on a terminal one live line per node with
// its phase and elapsed time; elsewhere (CI, pipes) plain timestamped lines;
// with --json one JSON event per line on stdout.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	enc   *json.Encoder
	tty   bool
	start time.Time
	order []string
	nodes map[string]*nodeLine
	drawn int
	stop  chan struct{}
	done  chan struct{}
}

type nodeLine struct {
	phase, msg string
	since      time.Time
	end        time.Duration
	final      bool
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("CI") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	return term.IsTerminal(int(f.Fd()))
}

func newProgress(w, stdout io.Writer, asJSON bool) *progress {
	p := &progress{w: w, start: time.Now(), nodes: map[string]*nodeLine{}}
	if asJSON {
		p.enc = json.NewEncoder(stdout)
		return p
	}
	if isTerminal(w) {
		p.tty = true
		p.stop, p.done = make(chan struct{}), make(chan struct{})
		go p.tick()
	}
	return p
}

func (p *progress) tick() {
	defer close(p.done)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.mu.Lock()
			p.redraw()
			p.mu.Unlock()
		}
	}
}

func (p *progress) Emit(e engine.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e.Elapsed == 0 {
		e.Elapsed = time.Since(p.start).Seconds()
	}
	if p.enc != nil {
		_ = p.enc.Encode(e)
		return
	}
	text := e.Message
	if e.Error != "" {
		text = e.Error
	}
	if !p.tty {
		node := e.Node
		if node == "" {
			node = "lab"
		}
		fmt.Fprintf(p.w, "[%6.2fs] %-8s %-9s %s\n", e.Elapsed, node, e.Phase, firstLine(text))
		return
	}
	if e.Node == "" {
		p.clear()
		fmt.Fprintf(p.w, "[%6.2fs] %s: %s\n", e.Elapsed, e.Phase, firstLine(text))
		p.redraw()
		return
	}
	n, ok := p.nodes[e.Node]
	if !ok {
		n = &nodeLine{since: time.Now()}
		p.nodes[e.Node] = n
		p.order = append(p.order, e.Node)
	}
	if e.Phase == engine.PhaseFailed || e.Phase == engine.PhaseDone || e.Phase == engine.PhaseDestroy || e.Phase == engine.PhaseStop || e.Phase == engine.PhaseSkipped {
		n.final = true
		n.end = time.Since(n.since)
	}
	n.phase, n.msg = e.Phase, firstLine(text)
	p.redraw()
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

func (p *progress) clear() {
	if p.drawn > 0 {
		fmt.Fprintf(p.w, "\033[%dA\033[J", p.drawn)
		p.drawn = 0
	}
}

func (p *progress) redraw() {
	if !p.tty || len(p.order) == 0 {
		return
	}
	width := 80
	if f, ok := p.w.(*os.File); ok {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 20 {
			width = w
		}
	}
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\033[%dA", p.drawn)
	}
	for _, name := range p.order {
		n := p.nodes[name]
		el := time.Since(n.since)
		if n.final {
			el = n.end
		}
		mark := "…"
		switch n.phase {
		case engine.PhaseDone, engine.PhaseDestroy, engine.PhaseStop:
			mark = "✔"
		case engine.PhaseFailed:
			mark = "✘"
		case engine.PhaseSkipped:
			mark = "-"
		}
		line := fmt.Sprintf("%s %-10s %-9s %5.1fs  %s", mark, name, n.phase, el.Seconds(), n.msg)
		if r := []rune(line); len(r) > width-1 {
			line = string(r[:width-1])
		}
		b.WriteString("\033[2K" + line + "\n")
	}
	p.drawn = len(p.order)
	fmt.Fprint(p.w, b.String())
}

// Close stops the live display and leaves the last state on screen.
func (p *progress) Close() {
	if p.tty {
		close(p.stop)
		<-p.done
		p.mu.Lock()
		p.redraw()
		p.mu.Unlock()
	}
}
