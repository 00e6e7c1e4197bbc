package diagram

import (
	"fmt"
	"strings"
)

// mermaid draws a flowchart: a subgraph per network holding one per role;
// after edges dashed, firewall traffic solid with what it allows.
func (g *graph) mermaid() string {
	var b strings.Builder
	b.WriteString("flowchart LR\n")
	if g.host {
		b.WriteString("  host([\"host\"])\n")
	}
	for _, n := range g.nets {
		fmt.Fprintf(&b, "  subgraph %s[\"%s\"]\n", n.id, mmLabel(n.label))
		for _, r := range n.roles {
			fmt.Fprintf(&b, "    subgraph %s[\"%s\"]\n", r.id, mmLabel(r.label))
			for _, x := range r.nodes {
				fmt.Fprintf(&b, "      %s[\"%s\"]\n", x.id, mmLabel(x.label))
			}
			b.WriteString("    end\n")
		}
		b.WriteString("  end\n")
	}
	for _, e := range g.edges {
		if e.after {
			fmt.Fprintf(&b, "  %s -. after .-> %s\n", e.from, e.to)
		} else {
			fmt.Fprintf(&b, "  %s -->|\"%s\"| %s\n", e.from, mmLabel(e.label), e.to)
		}
	}
	return b.String()
}

// mmLabel makes text safe inside a quoted Mermaid label.
func mmLabel(s string) string {
	s = strings.ReplaceAll(s, `"`, "#quot;")
	return strings.ReplaceAll(s, "\n", "<br/>")
}

// dot draws Graphviz clusters; an edge between two groups is drawn between
// a node of each and clipped at the clusters (compound=true).
func (g *graph) dot() string {
	var b strings.Builder
	fmt.Fprintf(&b, "digraph %s {\n  compound=true;\n  rankdir=LR;\n  node [shape=box, fontname=\"sans-serif\"];\n", dotQuote(g.title))
	if g.host {
		b.WriteString("  host [shape=ellipse];\n")
	}
	for _, n := range g.nets {
		fmt.Fprintf(&b, "  subgraph cluster_%s {\n    label=%s;\n", n.id, dotQuote(n.label))
		for _, r := range n.roles {
			fmt.Fprintf(&b, "    subgraph cluster_%s {\n      label=%s;\n", r.id, dotQuote(r.label))
			for _, x := range r.nodes {
				fmt.Fprintf(&b, "      %s [label=%s];\n", x.id, dotQuote(x.label))
			}
			b.WriteString("    }\n")
		}
		b.WriteString("  }\n")
	}
	for _, e := range g.edges {
		from, to := g.end(e.from), g.end(e.to)
		var attrs []string
		if from != e.from {
			attrs = append(attrs, "ltail=cluster_"+e.from)
		}
		if to != e.to {
			attrs = append(attrs, "lhead=cluster_"+e.to)
		}
		attrs = append(attrs, "label="+dotQuote(e.label))
		if e.after {
			attrs = append(attrs, "style=dashed")
		}
		fmt.Fprintf(&b, "  %s -> %s [%s];\n", from, to, strings.Join(attrs, ", "))
	}
	b.WriteString("}\n")
	return b.String()
}

// end is the node an edge touching id is drawn to: the node itself, or a
// node inside the group.
func (g *graph) end(id string) string {
	if n, ok := g.firstNode[id]; ok {
		return n
	}
	return id
}

func dotQuote(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, `"`, `\"`)
	return `"` + strings.ReplaceAll(s, "\n", `\n`) + `"`
}
