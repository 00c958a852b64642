package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// walkCommands calls f with the words of every command of the tree (groups included).
func walkCommands(path []string, c *command, f func(path []string, c *command)) {
	f(path, c)
	for name, child := range c.children {
		walkCommands(append(slices.Clone(path), name), child, f)
	}
}

// TestEveryCommandHasExamples: the README promises examples in every command's --help;
// six commands had none.
func TestEveryCommandHasExamples(t *testing.T) {
	walkCommands(nil, root, func(path []string, _ *command) {
		code, out, _ := runCLI(context.Background(), append(path, "--help")...)
		if code != 0 || !strings.Contains(out, "\nExamples:\n  mxp") {
			t.Errorf("mxp %s --help: exit %d, no Examples section\n%s", strings.Join(path, " "), code, out)
		}
		// A backquoted word in a flag's usage becomes its argument name: a sentence in
		// backquotes printed "-name mxp call --to NAME".
		if strings.Contains(out, " mxp ") && strings.Contains(out, "\n  -") {
			for _, line := range strings.Split(out, "\n") {
				if strings.HasPrefix(line, "  -") && strings.Contains(line, " mxp ") {
					t.Errorf("mxp %s --help: flag line %q", strings.Join(path, " "), line)
				}
			}
		}
	})
}

// TestVersionFlag: mxp --version prints what mxp version prints.
func TestVersionFlag(t *testing.T) {
	code, out, errOut := runCLI(context.Background(), "--version")
	_, want, _ := runCLI(context.Background(), "version")
	// An unreleased build says "(devel", not "dev" (which reads like the mxp dev command).
	if code != 0 || out != want || !strings.HasPrefix(out, "mxp (devel") || errOut != "" {
		t.Fatalf("mxp --version: exit %d %q %q (mxp version: %q)", code, out, errOut, want)
	}
}

// TestUsageErrorsAreOneLine: a mistake on the command line prints its one line and where
// the help is, not thirty lines of help after it.
func TestUsageErrorsAreOneLine(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"call", "--bogus"}, "mxp call: flag provided but not defined: -bogus\nsee 'mxp call --help'\n"},
		{[]string{"call", "--data", "x"}, "mxp call: --to is required\nsee 'mxp call --help'\n"},
		{[]string{"bench", "--duration", "soon"}, "see 'mxp bench --help'\n"},
		{[]string{"nonsense"}, "mxp: unknown command \"nonsense\"\nsee 'mxp --help'\n"},
		{[]string{"agent", "--nope"}, "mxp agent: unknown flag \"--nope\"\nsee 'mxp agent --help'\n"},
		{[]string{"agent"}, "mxp agent: a command is required: echo\nsee 'mxp agent --help'\n"}, // it printed the help, exit 0
	} {
		code, out, errOut := runCLI(context.Background(), tc.args...)
		if code != 2 || out != "" || !strings.HasSuffix(errOut, tc.want) || strings.Count(errOut, "\n") != 2 {
			t.Errorf("mxp %s: exit %d\nstdout %q\nstderr %q\nwant stderr ending %q", strings.Join(tc.args, " "), code, out, errOut, tc.want)
		}
	}
}

// TestServicesServed: help and not-found errors name the services that answer (those
// with a folder in services/ that is a well-known service), not the ids the protocol
// reserves for later (tools, policy).
func TestServicesServed(t *testing.T) {
	var shipped []string
	for _, name := range mxp.ServiceNames() {
		if st, err := os.Stat(filepath.Join("..", "..", "services", name)); err == nil && st.IsDir() {
			shipped = append(shipped, name)
		}
	}
	if got := strings.Join(shipped, ", "); got != servicesServed {
		t.Fatalf("servicesServed = %q, the services/ folders that are well-known services: %q", servicesServed, got)
	}
	_, err := pickByName(nil, "nobody")
	if err == nil || !strings.Contains(err.Error(), "(services: registry, inference;") {
		t.Fatalf("not found: %v", err)
	}
	_, out, _ := runCLI(context.Background(), "call", "--help")
	if strings.Contains(out, "tools") || strings.Contains(out, "policy") {
		t.Fatalf("mxp call --help names services nothing answers:\n%s", out)
	}
}
