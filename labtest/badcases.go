package labtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// BadCase is a malformed lab file and a part of the error it must give.
type BadCase struct {
	Name string
	Want string
	Src  string
}

// BadCases reads topology/testdata/bad.txt: each case is a line
// "=== NAME", a line "--- want: TEXT", then the file's lines.
func BadCases(t testing.TB) []BadCase {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(Root(), "topology", "testdata", "bad.txt"))
	require.NoError(t, err)
	var out []BadCase
	var cur *BadCase
	var lines []string
	flush := func() {
		if cur != nil {
			if len(lines) > 0 {
				cur.Src = strings.Join(lines, "\n") + "\n"
			}
			out = append(out, *cur)
		}
		lines = nil
	}
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "=== "):
			flush()
			cur = &BadCase{Name: strings.TrimPrefix(line, "=== ")}
		case cur != nil && cur.Want == "" && strings.HasPrefix(line, "--- want: "):
			cur.Want = strings.TrimPrefix(line, "--- want: ")
		case cur != nil:
			lines = append(lines, line)
		}
	}
	flush()
	require.GreaterOrEqual(t, len(out), 30)
	return out
}
