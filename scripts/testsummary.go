//go:build ignore

// testsummary runs a `go test -json` command line and prints what `go test` would (one
// line per package, the output of every failed test) followed by a summary that names
// every skipped test and its reason, so that a suite skipped for a missing prerequisite
// (redis-server, docker) is seen without -v. It exits with the command's status, or 1
// when the command exited 0 and the stream still reported a failure.
//
// Usage (make test): go run scripts/testsummary.go go test -race -json ./...
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action     string
	Package    string
	Test       string
	Output     string
	Elapsed    float64
	ImportPath string
}

type key struct{ pkg, test string }

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: go run scripts/testsummary.go go test -json [flags] [packages]")
		os.Exit(2)
	}
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	cmd.Stdin, cmd.Stderr = os.Stdin, os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(2)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(2)
	}
	s := newSummary()
	s.read(out, os.Stdout)
	waitErr := cmd.Wait()
	s.print(os.Stdout, time.Since(start))
	var ee *exec.ExitError
	switch {
	case errors.As(waitErr, &ee):
		os.Exit(ee.ExitCode())
	case waitErr != nil:
		fmt.Fprintln(os.Stderr, "testsummary:", waitErr)
		os.Exit(1)
	case s.failed > 0 || len(s.failedPkgs) > 0:
		os.Exit(1)
	}
}

type summary struct {
	output     map[key][]string // output of each test (and of each package, test "")
	passed     int
	failed     int
	skipped    map[string][]string // reason -> "pkg TestName"
	failedPkgs []string
	pkgs       int
}

func newSummary() *summary {
	return &summary{output: map[key][]string{}, skipped: map[string][]string{}}
}

// read consumes the event stream, printing a line per package and the output of what
// failed as it happens.
func (s *summary) read(r io.Reader, w io.Writer) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.Action == "" {
			fmt.Fprintln(w, sc.Text()) // not an event: pass it on
			continue
		}
		k := key{e.Package, e.Test}
		if e.Action == "build-output" {
			k = key{e.ImportPath, ""}
		}
		switch e.Action {
		case "output", "build-output":
			s.output[k] = append(s.output[k], e.Output)
		case "build-fail":
			fmt.Fprint(w, strings.Join(s.output[k], ""))
			delete(s.output, k)
		case "pass", "fail", "skip":
			if e.Test == "" {
				s.endPackage(w, e)
				continue
			}
			switch e.Action {
			case "pass":
				s.passed++
			case "fail":
				s.failed++
				fmt.Fprint(w, strings.Join(s.output[k], ""))
			case "skip":
				reason := skipReason(s.output[k])
				s.skipped[reason] = append(s.skipped[reason], shortPkg(e.Package)+" "+e.Test)
			}
			delete(s.output, k)
		}
	}
}

// endPackage prints the package's line, as `go test` does without -v.
func (s *summary) endPackage(w io.Writer, e event) {
	k := key{e.Package, ""}
	lines := s.output[k]
	delete(s.output, k)
	s.pkgs++
	switch e.Action {
	case "fail":
		s.failedPkgs = append(s.failedPkgs, e.Package)
		fmt.Fprint(w, strings.Join(lines, ""))
	case "skip": // no test files
	default:
		fmt.Fprintf(w, "ok  \t%s\t%.3fs\n", e.Package, e.Elapsed)
	}
}

// skipReason is what the test logged before --- SKIP (its t.Skip message), without the
// file:line prefix.
func skipReason(lines []string) string {
	var parts []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- ") {
			continue
		}
		if i := strings.Index(t, ".go:"); i >= 0 {
			if j := strings.Index(t[i:], ": "); j >= 0 {
				t = t[i+j+2:]
			}
		}
		parts = append(parts, t)
	}
	if len(parts) == 0 {
		return "(no reason given)"
	}
	return strings.Join(parts, " ")
}

func shortPkg(p string) string { return strings.TrimPrefix(p, "github.com/mxp-mesh/mesh/") }

func (s *summary) print(w io.Writer, took time.Duration) {
	nskip := 0
	for _, t := range s.skipped {
		nskip += len(t)
	}
	fmt.Fprintf(w, "\n=== summary: %d packages, %d tests passed, %d failed, %d skipped (%s)\n",
		s.pkgs, s.passed, s.failed, nskip, took.Round(time.Second))
	if nskip > 0 {
		reasons := make([]string, 0, len(s.skipped))
		for r := range s.skipped {
			reasons = append(reasons, r)
		}
		sort.Strings(reasons)
		fmt.Fprintf(w, "SKIPPED (each reason, then its tests):\n")
		for _, r := range reasons {
			tests := s.skipped[r]
			sort.Strings(tests)
			fmt.Fprintf(w, "  %s\n", r)
			const show = 4
			for i, t := range tests {
				if i == show {
					fmt.Fprintf(w, "      ... and %d more\n", len(tests)-show)
					break
				}
				fmt.Fprintf(w, "      %s\n", t)
			}
		}
	}
	for _, p := range s.failedPkgs {
		fmt.Fprintf(w, "FAIL %s\n", p)
	}
}
