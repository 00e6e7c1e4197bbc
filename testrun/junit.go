package testrun

import (
	"encoding/xml"
	"fmt"
	"strings"
	"time"

	"github.com/labctl/lab/internal/fsx"
)

// JUnit XML as GitHub Actions (through a reporter action), GitLab and
// Jenkins read it: one testsuite for the lab, one testcase per test.

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name      string      `xml:"name,attr"`
	Tests     int         `xml:"tests,attr"`
	Failures  int         `xml:"failures,attr"`
	Errors    int         `xml:"errors,attr"`
	Skipped   int         `xml:"skipped,attr"`
	Time      string      `xml:"time,attr"`
	Timestamp string      `xml:"timestamp,attr"`
	Cases     []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
	Skipped   *junitProblem `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

// writeJUnit writes the run's report. When the lab never came up, a
// testcase "lab up" carries the error and every test is skipped.
func writeJUnit(path, lab string, started time.Time, res *Result) error {
	s := junitSuite{Name: "lab " + lab, Timestamp: started.UTC().Format("2006-01-02T15:04:05"),
		Time: secs(time.Since(started).Seconds())}
	class := "lab." + lab
	if res.UpError != "" {
		s.Cases = append(s.Cases, junitCase{Name: "lab up", Classname: class, Time: secs(res.UpSeconds),
			Error: &junitProblem{Message: "the lab did not come up", Type: "up", Text: xmlSafe(res.UpError)}})
		s.Errors++
	}
	for _, t := range res.Tests {
		c := junitCase{Name: t.Name, Classname: class, Time: secs(t.Seconds)}
		switch {
		case res.UpError != "":
			c.Skipped = &junitProblem{Message: "the lab did not come up"}
			s.Skipped++
		case !t.Passed:
			c.Failure = &junitProblem{Message: t.Failure(), Type: "exit", Text: xmlSafe(t.Tail)}
			s.Failures++
		}
		s.Cases = append(s.Cases, c)
	}
	s.Tests = len(s.Cases)
	doc := junitSuites{Name: "lab test", Tests: s.Tests, Failures: s.Failures, Errors: s.Errors, Time: s.Time, Suites: []junitSuite{s}}
	b, err := xml.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return fsx.WriteAtomic(path, append([]byte(xml.Header), append(b, '\n')...), 0o644)
}

func secs(s float64) string { return fmt.Sprintf("%.3f", s) }

// xmlSafe drops what XML 1.0 cannot hold (control characters from a
// test's output, such as terminal colours' ESC), which encoding/xml would
// write as U+FFFD anyway.
func xmlSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' || (r >= 0x20 && r != 0xFFFE && r != 0xFFFF) {
			return r
		}
		return -1
	}, s)
}
