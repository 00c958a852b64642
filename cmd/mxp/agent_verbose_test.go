package main

import (
	"context"
	"strings"
	"testing"
)

// TestEchoAgentPrintsCallsOnlyWhenVerbose: mxp agent echo prints no line per call unless
// --verbose (the README's 5 s bench printed 31,267 lines into its terminal), and its hint
// names the program as it was started.
func TestEchoAgentPrintsCallsOnlyWhenVerbose(t *testing.T) {
	dir := startDev(t)
	for _, verbose := range []bool{false, true} {
		name := "quiet-echo"
		args := []string{"agent", "echo", "--name", name, "--data-dir", dir}
		if verbose {
			name = "verbose-echo"
			args = []string{"agent", "echo", "--name", name, "--verbose", "--data-dir", dir}
		}
		ctx, cancel := context.WithCancel(context.Background())
		out := newSignalBuffer(`registered as "` + name + `"`)
		done := make(chan int, 1)
		go func() { done <- execute(ctx, args, strings.NewReader(""), out, out) }()
		out.wait(t, "mxp agent echo")
		for range 2 {
			if code, o, e := runCLI(context.Background(), "call", "--to", name, "--data", "hello", "--data-dir", dir); code != 0 || o != "hello\n" {
				t.Fatalf("call: exit %d %q %s", code, o, e)
			}
		}
		cancel()
		<-done
		got := out.String()
		perCall := strings.Contains(got, "call 1: 5 bytes echoed\n") && strings.Contains(got, "call 2: 5 bytes echoed\n")
		if perCall != verbose || strings.Contains(got, "call 3") || !strings.Contains(got, "try: mxp call --to "+name) {
			t.Errorf("--verbose %v:\n%s", verbose, got)
		}
	}
}
