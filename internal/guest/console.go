package guest

import (
	"bufio"
	"io"
	"strconv"
	"strings"
)

// Status is a test's outcome as go test -v prints it.
type Status string

const (
	Pass Status = "PASS"
	Fail Status = "FAIL"
	Skip Status = "SKIP"
)

// TestResult is one test's (or subtest's) result line and the output
// printed while it was the running test.
type TestResult struct {
	Name   string // "TestX" or "TestX/sub"
	Status Status
	Output []string
}

// RunResult is what the console shows of one Run.
type RunResult struct {
	Name  string
	Tests []TestResult
	// Exited is true when the exit marker was seen; Code is then the
	// binary's exit status.
	Exited bool
	Code   int
	// Output is every line of the run, for failure reports.
	Output []string
}

// Console is the parsed console of one boot.
type Console struct {
	Runs []RunResult
	// Done is true when /init reached its end.
	Done bool
	// Errors are /init's own failures (a module that did not load).
	Errors []string
	// Other is everything outside a run: the kernel's messages and
	// anything printed before the first run.
	Other []string
}

// ParseConsole reads a guest's console: the markers /init prints around
// each test binary and, between them, go test -v output. Result lines are
// found anywhere in a line (a kernel message can land in front of one).
func ParseConsole(r io.Reader) (*Console, error) {
	c := &Console{}
	var cur *RunResult
	var running string // the test whose output the next lines are
	output := make(map[string][]string)
	finish := func() {
		for i := range cur.Tests {
			cur.Tests[i].Output = output[cur.Tests[i].Name]
		}
		output = make(map[string][]string)
		c.Runs = append(c.Runs, *cur)
		cur, running = nil, ""
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case strings.Contains(line, markRun):
			if cur != nil {
				finish()
			}
			cur = &RunResult{Name: strings.TrimSpace(line[strings.Index(line, markRun)+len(markRun):])}
			continue
		case strings.Contains(line, markExit) && cur != nil:
			f := strings.Fields(line[strings.Index(line, markExit)+len(markExit):])
			if len(f) == 2 && f[0] == cur.Name {
				if code, err := strconv.Atoi(f[1]); err == nil {
					cur.Exited, cur.Code = true, code
					finish()
					continue
				}
			}
		case strings.Contains(line, markErr):
			c.Errors = append(c.Errors, strings.TrimSpace(line[strings.Index(line, markErr)+len(markErr):]))
			continue
		case strings.Contains(line, markDone):
			c.Done = true
			continue
		}
		if cur == nil {
			c.Other = append(c.Other, line)
			continue
		}
		cur.Output = append(cur.Output, line)
		if name, ok := testStarted(line); ok {
			running = name
			continue
		}
		if t, ok := resultLine(line); ok {
			cur.Tests = append(cur.Tests, t)
			continue
		}
		if running != "" {
			output[running] = append(output[running], line)
		}
	}
	if cur != nil {
		finish()
	}
	return c, sc.Err()
}

// testStarted recognises "=== RUN   TestX", "=== CONT  TestX" and
// "=== PAUSE TestX".
func testStarted(line string) (string, bool) {
	for _, p := range []string{"=== RUN", "=== CONT", "=== NAME"} {
		if i := strings.Index(line, p); i >= 0 {
			f := strings.Fields(line[i+len(p):])
			if len(f) > 0 {
				return f[0], true
			}
		}
	}
	return "", false
}

// resultLine recognises "--- PASS: TestX (0.00s)", indented for subtests.
func resultLine(line string) (TestResult, bool) {
	i := strings.Index(line, "--- ")
	if i < 0 {
		return TestResult{}, false
	}
	rest := line[i+4:]
	for _, s := range []Status{Pass, Fail, Skip} {
		if r, ok := strings.CutPrefix(rest, string(s)+": "); ok {
			f := strings.Fields(r)
			if len(f) == 0 {
				return TestResult{}, false
			}
			return TestResult{Name: f[0], Status: s}, true
		}
	}
	return TestResult{}, false
}
