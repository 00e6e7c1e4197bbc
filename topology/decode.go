package topology

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// decoder turns a yaml.Node tree into Go structs strictly: unknown keys,
// duplicate keys and wrong types are errors that carry the field path and the
// line. It records the line of every path it visits so that later semantic
// checks can point at the same place.
type decoder struct {
	lines map[string]int
	errs  *Errors
	// visits counts the nodes decoded, aliases expanded: a file of nested
	// aliases (a "billion laughs") would otherwise expand without end.
	visits   int
	overflow bool
}

// MaxNodes is how many YAML nodes a lab file may expand to, aliases
// included: far more than any real lab, far less than an alias bomb.
const MaxNodes = 200000

// Field paths look like nodes[2].provision[0].shell.
func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func indexPath(parent string, i int) string { return fmt.Sprintf("%s[%d]", parent, i) }

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.errs.add(path, line, fmt.Sprintf(format, args...))
}

// decode fills v (a pointer) from n.
func (d *decoder) decode(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return
		}
		n = n.Content[0]
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if d.visits++; d.visits > MaxNodes {
		if !d.overflow {
			d.overflow = true
			d.fail(n, path, "the file expands to more than %d YAML nodes (nested aliases?)", MaxNodes)
		}
		return
	}
	if path != "" {
		if _, seen := d.lines[path]; !seen {
			d.lines[path] = n.Line
		}
	}
	// An explicit null leaves the zero value, as if the key were absent.
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}

	// A type may also be written as a plain string (a port as "8080:80").
	if n.Kind == yaml.ScalarNode && v.CanAddr() {
		if sd, ok := v.Addr().Interface().(interface{ UnmarshalScalar(string) error }); ok {
			if err := sd.UnmarshalScalar(n.Value); err != nil {
				d.fail(n, path, "%v", err)
			}
			return
		}
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, path, v.Elem())
	case reflect.Struct:
		d.decodeStruct(n, path, v)
	case reflect.Slice:
		d.decodeSlice(n, path, v)
	case reflect.Map:
		d.decodeMap(n, path, v)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "want a string, got %s", kindName(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Int, reflect.Int64:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			d.fail(n, path, "want a whole number, got %s", describe(n))
			return
		}
		i, err := strconv.ParseInt(n.Value, 0, 64)
		if err != nil {
			d.fail(n, path, "want a whole number, got %q", n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Bool:
		var b, ok bool
		if n.Kind == yaml.ScalarNode && n.Tag == "!!bool" {
			b, ok = parseBool(n.Value)
		}
		if !ok {
			d.fail(n, path, "want true or false, got %s", describe(n))
			return
		}
		v.SetBool(b)
	default:
		d.fail(n, path, "internal: cannot decode into %s", v.Type())
	}
}

// parseBool reads YAML 1.2's booleans; "yes" under a !!bool tag is not one.
func parseBool(s string) (bool, bool) {
	switch s {
	case "true", "True", "TRUE":
		return true, true
	case "false", "False", "FALSE":
		return false, true
	}
	return false, false
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a scalar"
	}
	return "something else"
}

func describe(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		return strconv.Quote(Cut(n.Value))
	}
	return kindName(n)
}

// Cut shortens a value quoted in a message.
func Cut(s string) string {
	const max = 60
	if len(s) <= max {
		return s
	}
	i := max
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + fmt.Sprintf("…(%d bytes)", len(s))
}

// pairs returns a mapping's key/value pairs with YAML merge keys (<<: *x,
// <<: [*x, *y]) resolved: keys written in the mapping win over merged ones,
// and earlier merged mappings over later ones, as YAML 1.1 says.
func (d *decoder) pairs(n *yaml.Node, path string) [][2]*yaml.Node {
	var own, merged [][2]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			merged = append(merged, d.mergeSources(v, path)...)
			continue
		}
		own = append(own, [2]*yaml.Node{k, v})
	}
	if len(merged) == 0 {
		return own
	}
	have := map[string]bool{}
	for _, p := range own {
		have[p[0].Value] = true
	}
	for _, p := range merged {
		if !have[p[0].Value] {
			have[p[0].Value] = true
			own = append(own, p)
		}
	}
	return own
}

func (d *decoder) mergeSources(v *yaml.Node, path string) [][2]*yaml.Node {
	if v.Kind == yaml.AliasNode {
		v = v.Alias
	}
	switch v.Kind {
	case yaml.MappingNode:
		if d.visits += len(v.Content); d.visits > MaxNodes {
			return nil
		}
		return d.pairs(v, path)
	case yaml.SequenceNode:
		var out [][2]*yaml.Node
		for _, item := range v.Content {
			if item.Kind == yaml.AliasNode {
				item = item.Alias
			}
			if item.Kind != yaml.MappingNode {
				d.fail(item, path, "<< merges mappings, got %s", describe(item))
				continue
			}
			out = append(out, d.mergeSources(item, path)...)
		}
		return out
	}
	d.fail(v, path, "<< merges a mapping (<<: *anchor), got %s", describe(v))
	return nil
}

// keyOf checks that a mapping key is a plain name.
func (d *decoder) keyOf(k *yaml.Node, path string) (string, bool) {
	if k.Kind == yaml.AliasNode {
		k = k.Alias
	}
	if k.Kind != yaml.ScalarNode {
		d.fail(k, path, "a key must be a plain name, got %s", kindName(k))
		return "", false
	}
	return k.Value, true
}

// fieldInfo maps YAML keys to struct field indexes, from `yaml:"key"` tags.
func fieldInfo(t reflect.Type) (map[string]int, []string) {
	m := map[string]int{}
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		m[tag] = i
		keys = append(keys, tag)
	}
	return m, keys
}

func (d *decoder) decodeStruct(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "want a mapping, got %s", describe(n))
		return
	}
	fields, keys := fieldInfo(v.Type())
	seen := map[string]bool{}
	for _, kv := range d.pairs(n, path) {
		k, val := kv[0], kv[1]
		key, ok := d.keyOf(k, path)
		if !ok {
			continue
		}
		p := joinPath(path, Cut(key))
		if seen[key] {
			d.fail(k, p, "duplicate key %q", key)
			continue
		}
		seen[key] = true
		idx, ok := fields[key]
		if !ok {
			msg := fmt.Sprintf("unknown field %q", Cut(key))
			if s := suggest(key, keys); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			} else {
				sort.Strings(keys)
				msg += fmt.Sprintf(" (known: %s)", strings.Join(keys, ", "))
			}
			d.errs.add(p, k.Line, msg)
			continue
		}
		d.lines[p] = k.Line
		d.decode(val, p, v.Field(idx))
	}
}

func (d *decoder) decodeSlice(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, path, "want a list, got %s", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.decode(item, indexPath(path, i), s.Index(i))
	}
	v.Set(s)
}

func (d *decoder) decodeMap(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "want a mapping, got %s", describe(n))
		return
	}
	if v.Type().Key().Kind() != reflect.String {
		d.fail(n, path, "internal: map keys must be strings")
		return
	}
	m := reflect.MakeMap(v.Type())
	for _, kv := range d.pairs(n, path) {
		k, val := kv[0], kv[1]
		key, ok := d.keyOf(k, path)
		if !ok {
			continue
		}
		p := joinPath(path, Cut(key))
		if m.MapIndex(reflect.ValueOf(key)).IsValid() {
			d.fail(k, p, "duplicate key %q", Cut(key))
			continue
		}
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(val, p, elem)
		m.SetMapIndex(reflect.ValueOf(key), elem)
	}
	v.Set(m)
}

// suggest returns the known key closest to key when it is a likely typo.
func suggest(key string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := levenshtein(key, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
