package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// tourStep is one command of the README's tour: the command line after "$ " and the
// lines the README shows under it.
type tourStep struct {
	cmd  string
	want []string
}

// readmeTour returns the commands of README.md's "A five-minute tour", in order: every
// "$ " line of its console blocks, with the output lines that follow it.
func readmeTour(t *testing.T) []tourStep {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	start := strings.Index(s, "\n## A five-minute tour")
	if start < 0 {
		t.Fatal(`README.md has no "## A five-minute tour"`)
	}
	s = s[start+1:]
	if end := strings.Index(s, "\n## "); end >= 0 {
		s = s[:end]
	}
	var steps []tourStep
	inConsole := false
	for _, line := range strings.Split(s, "\n") {
		switch {
		case strings.HasPrefix(line, "```console"):
			inConsole = true
		case strings.HasPrefix(line, "```"):
			inConsole = false
		case inConsole && strings.HasPrefix(line, "$ "):
			steps = append(steps, tourStep{cmd: strings.TrimPrefix(line, "$ ")})
		case inConsole && len(steps) > 0:
			steps[len(steps)-1].want = append(steps[len(steps)-1].want, line)
		}
	}
	if len(steps) < 5 {
		t.Fatalf("the tour has %d commands: %+v", len(steps), steps)
	}
	return steps
}

// shellWords splits a command line as a POSIX shell would for the README's commands:
// words separated by blanks, single and double quotes grouping (no expansions).
func shellWords(line string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for _, r := range line {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words, inWord = append(words, cur.String()), false
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unclosed quote in %q", line)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// What differs from run to run in the tour's output, and is compared by its shape only.
var tourVariable = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`), "<ID>"},
	{regexp.MustCompile(`[A-Za-z0-9+/]{43}=`), "<KEY>"},
	{regexp.MustCompile(`127\.0\.0\.1:[0-9]+`), "<ADDR>"},
	{regexp.MustCompile(`[0-9]+s ago`), "<AGO>"},
	{regexp.MustCompile(`\s+`), " "},
}

func normalizeTourLine(s string) string {
	for _, v := range tourVariable {
		s = v.re.ReplaceAllString(s, v.with)
	}
	return strings.TrimSpace(s)
}

// checkTourOutput: the README's lines under a command are the first lines of its output,
// up to what differs from run to run (ids, keys, ports, ages, column widths).
func checkTourOutput(t *testing.T, step tourStep, out string) {
	t.Helper()
	got := strings.Split(strings.TrimRight(out, "\n"), "\n")
	for i, w := range step.want {
		if i >= len(got) || normalizeTourLine(got[i]) != normalizeTourLine(w) {
			t.Errorf("$ %s\nREADME shows:\n%s\nthe command printed:\n%s", step.cmd, strings.Join(step.want, "\n"), out)
			return
		}
	}
}

// makeRunBuildLine is the line the Makefile's mxp target (which make run runs first)
// echoes, with $(BIN) as bin.
func makeRunBuildLine(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^mxp:\n(?:\t.*\n)*?\t@echo "([^"]*)"`).FindSubmatch(b)
	if m == nil {
		t.Fatal(`the Makefile's mxp target echoes no line`)
	}
	return strings.ReplaceAll(string(m[1]), "$(BIN)", "bin")
}

// tourProcess is a command of the tour running in its own process (the test binary as
// mxp, see TestMain), in the tour's directory.
type tourProcess struct {
	cmd  *exec.Cmd
	out  syncBuffer
	done chan struct{}
	// lines receives each line of stdout as it is printed.
	lines chan string
}

func startTourProcess(t *testing.T, dir string, args []string) *tourProcess {
	t.Helper()
	a, _ := json.Marshal(args)
	p := &tourProcess{cmd: exec.Command(os.Args[0]), done: make(chan struct{}), lines: make(chan string, 1024)}
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), childArgsEnv+"="+string(a), "MXP_EDGE=", "MXP_EDGE_KEY=", "MXP_INFERENCE_URL=")
	p.cmd.Stderr = &p.out
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.out.Write([]byte(sc.Text() + "\n"))
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
		_ = p.cmd.Wait()
	}()
	return p
}

// waitLines waits for n lines of output, or fails the test if the process exits first
// or a minute passes (a hang guard).
func (p *tourProcess) waitLines(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-p.lines:
		case <-p.done:
			t.Fatalf("%v exited:\n%s", p.cmd.Args, p.out.String())
		case <-time.After(time.Minute):
			t.Fatalf("%v: no output for a minute:\n%s", p.cmd.Args, p.out.String())
		}
	}
}

// stop interrupts the process as Ctrl-C does and waits for it.
func (p *tourProcess) stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	<-p.done
}

// TestReadmeTour plays README.md's five-minute tour as written: each "$ " command of its
// console blocks, parsed from the README (so that the README cannot drift from the code),
// run as its own process in a fresh directory, and its output checked against the lines
// the README shows. `make run` runs mxp dev (what the target runs, on free ports: the
// defaults may be taken on a shared machine) and `bin/mxp X` runs mxp X; both stay up
// until the end, as in their terminals; curl fetches from the mesh's HTTP address.
func TestReadmeTour(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the tour's processes are interrupted with a signal")
	}
	steps := readmeTour(t)
	dir := t.TempDir()
	var (
		background []*tourProcess
		httpAddr   string
	)
	defer func() {
		for i := len(background) - 1; i >= 0; i-- {
			background[i].stop()
		}
	}()
	for _, step := range steps {
		cmdline, filter, piped := strings.Cut(step.cmd, " | ")
		words, err := shellWords(cmdline)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case cmdline == "make run":
			// make run prints the Makefile's line about the build, then runs bin/mxp dev.
			if len(step.want) == 0 || step.want[0] != makeRunBuildLine(t) {
				t.Errorf("$ make run: the README's first line is not the Makefile's:\n%q\n%q", step.want, makeRunBuildLine(t))
			} else {
				step.want = step.want[1:]
			}
			p := startTourProcess(t, dir, []string{"dev", "--edge-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--nats-addr", "127.0.0.1:0"})
			background = append(background, p)
			p.waitLines(t, len(step.want))
			checkTourOutput(t, step, p.out.String())
			info, err := readEdgeInfo(filepath.Join(dir, defaultDataDir))
			if err != nil {
				t.Fatal(err)
			}
			httpAddr = info.HTTPAddr
		case len(words) > 2 && words[0] == "bin/mxp" && words[1] == "agent":
			p := startTourProcess(t, dir, words[1:])
			background = append(background, p)
			p.waitLines(t, len(step.want))
			checkTourOutput(t, step, p.out.String())
		case words[0] == "bin/mxp":
			p := startTourProcess(t, dir, words[1:])
			<-p.done
			if code := p.cmd.ProcessState.ExitCode(); code != 0 {
				t.Fatalf("$ %s: exit %d\n%s", step.cmd, code, p.out.String())
			}
			checkTourOutput(t, step, p.out.String())
		case words[0] == "curl":
			url := words[len(words)-1]
			if i := strings.Index(url, "/"); i >= 0 {
				url = url[i:]
			}
			resp, err := http.Get(httpAddr + url)
			if err != nil {
				t.Fatalf("$ %s: %v", step.cmd, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("$ %s: %s\n%s", step.cmd, resp.Status, body)
			}
			out := string(body)
			if piped {
				pattern := strings.TrimPrefix(filter, "grep ")
				var kept []string
				for _, l := range strings.Split(out, "\n") {
					if strings.Contains(l, pattern) {
						kept = append(kept, l)
					}
				}
				if len(kept) == 0 {
					t.Fatalf("$ %s: grep found nothing", step.cmd)
				}
				out = strings.Join(kept, "\n")
			}
			checkTourOutput(t, step, out)
		default:
			t.Fatalf("the tour's command %q is not one this test knows how to run; teach it", step.cmd)
		}
	}
}

// TestReadmeTourExamples: every `bin/mxp ...` command the examples' READMEs show (a
// console or code line, or an inline span) names commands that exist and flags they take:
// it is parsed as the CLI parses it (the command tree, then the command's flags), not run.
// The examples' commands drifted from the CLI unnoticed, the tour's own being run above.
func TestReadmeTourExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "examples", "*", "README.md"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples/*/README.md: %v", err)
	}
	inline := regexp.MustCompile("`(bin/mxp [^`]+)`")
	checked := 0
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for n, line := range strings.Split(string(b), "\n") {
			var cmds []string
			if l := strings.TrimPrefix(strings.TrimSpace(line), "$ "); strings.HasPrefix(l, "bin/mxp ") {
				cmds = append(cmds, l)
			} else {
				for _, m := range inline.FindAllStringSubmatch(line, -1) {
					cmds = append(cmds, m[1])
				}
			}
			for _, c := range cmds {
				if err := parseCommandLine(c); err != nil {
					t.Errorf("%s:%d: %s: %v", file, n+1, c, err)
				}
				checked++
			}
		}
	}
	if checked < 4 {
		t.Fatalf("only %d bin/mxp commands found in %v", checked, files)
	}
	for _, bad := range []string{"bin/mxp call --bogus x", "bin/mxp nonsense", "bin/mxp agent", "bin/mxp agent echo --count"} {
		if parseCommandLine(bad) == nil {
			t.Errorf("%s: parsed", bad)
		}
	}
	if err := parseCommandLine(`bin/mxp agent echo --name 'a b'  # a comment`); err != nil {
		t.Errorf("a good line: %v", err)
	}
}

// parseCommandLine parses a shell line "bin/mxp CMD... [flags]" (up to a # comment) as
// execute does, without running it: the commands must exist and the flags be theirs.
func parseCommandLine(line string) error {
	words, err := shellWords(line)
	if err != nil {
		return err
	}
	for i, w := range words {
		if strings.HasPrefix(w, "#") {
			words = words[:i]
			break
		}
	}
	cmd, _, rest := findCommand(words[1:])
	if cmd.Run == nil {
		return fmt.Errorf("%q is not a command (mxp %s has commands, not %q)", line, cmd.Name, rest)
	}
	fs := flag.NewFlagSet(cmd.Name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if cmd.Flags != nil {
		cmd.Flags(fs)
	}
	return fs.Parse(rest)
}
