// Package graph finds cycles in dependency graphs: the roles' `after`
// lists of a lab file and the engine's task graph use the same search.
package graph

import "sort"

// Cycle returns a cycle among ids, as the path a → b → … → a, or nil. deps
// gives an id's dependencies; ones not in ids are ignored. The search is in
// sorted order, so the same graph always reports the same cycle.
func Cycle(ids []string, deps func(string) []string) []string {
	known := map[string]bool{}
	for _, id := range ids {
		known[id] = true
	}
	sorted := append([]string(nil), ids...)
	sort.Strings(sorted)
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var path []string
	var visit func(string) []string
	visit = func(id string) []string {
		color[id] = grey
		path = append(path, id)
		for _, d := range deps(id) {
			if !known[d] {
				continue
			}
			switch color[d] {
			case grey:
				for i, p := range path {
					if p == d {
						return append(append([]string(nil), path[i:]...), d)
					}
				}
			case white:
				if c := visit(d); c != nil {
					return c
				}
			}
		}
		path = path[:len(path)-1]
		color[id] = black
		return nil
	}
	for _, id := range sorted {
		if color[id] == white {
			if c := visit(id); c != nil {
				return c
			}
		}
	}
	return nil
}
