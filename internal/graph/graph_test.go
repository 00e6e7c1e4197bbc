package graph

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCycle(t *testing.T) {
	deps := map[string][]string{"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a", "x"}}
	get := func(id string) []string { return deps[id] }
	assert.Equal(t, []string{"a", "b", "c", "a"}, Cycle([]string{"d", "c", "b", "a"}, get))
	assert.Nil(t, Cycle([]string{"d", "b"}, get), "edges to ids outside the set are ignored")
	assert.Equal(t, []string{"s", "s"}, Cycle([]string{"s"}, func(string) []string { return []string{"s"} }))
}
