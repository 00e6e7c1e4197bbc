package labtest

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// CopyLab reads a lab's folder (the current one, where go test runs a
// lab's package) as files for New: everything but its state, Python
// caches, Go tests and Markdown. oldnew are replacements for its lab.yaml
// (each must be there): the test's own name, subnets and ports.
func CopyLab(t testing.TB, oldnew ...string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.Walk(".", func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if fi.IsDir() && (fi.Name() == ".lab" || fi.Name() == "__pycache__") {
			return filepath.SkipDir
		}
		if fi.Mode().IsRegular() && !strings.HasSuffix(p, "_test.go") && !strings.HasSuffix(p, ".md") {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			files[p] = string(b)
		}
		return nil
	})
	require.NoError(t, err)
	files["lab.yaml"] = Edit(t, files["lab.yaml"], oldnew...)
	return files
}

// Edit replaces each old with its new, once, and fails the test when one is
// not there (a lab file that changed under its test).
func Edit(t testing.TB, s string, oldnew ...string) string {
	t.Helper()
	for i := 0; i+1 < len(oldnew); i += 2 {
		require.Contains(t, s, oldnew[i])
		s = strings.Replace(s, oldnew[i], oldnew[i+1], 1)
	}
	return s
}

// Eventually polls f every interval until it holds, and fails the test
// when it does not within d; it returns how long it took.
func Eventually(t testing.TB, d, interval time.Duration, what string, f func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !f() {
		if time.Since(start) > d {
			t.Fatalf("not within %s: %s", d, what)
		}
		time.Sleep(interval)
	}
	return time.Since(start)
}

// Loop is a request loop for a test: it calls try, one call after another
// with pause between them, until End, counting the calls and those that
// failed (try returned false).
type Loop struct {
	sent, failed atomic.Int64
	stop         chan struct{}
	wg           sync.WaitGroup
}

// StartLoop starts a Loop.
func StartLoop(pause time.Duration, try func() bool) *Loop {
	lp := &Loop{stop: make(chan struct{})}
	lp.wg.Add(1)
	go func() {
		defer lp.wg.Done()
		for {
			select {
			case <-lp.stop:
				return
			default:
			}
			lp.sent.Add(1)
			if !try() {
				lp.failed.Add(1)
			}
			time.Sleep(pause)
		}
	}()
	return lp
}

// End lets the loop run for linger more, stops it, and says what it saw.
func (lp *Loop) End(linger time.Duration) (sent, failed int64) {
	time.Sleep(linger)
	close(lp.stop)
	lp.wg.Wait()
	return lp.sent.Load(), lp.failed.Load()
}
