package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mxp-mesh/mesh/pkg/agent"
)

// TestStreamCommand: mxp stream opens a stream through a real mesh and prints the chunks
// in order (the inference service streams its answer as JSON chunks); a stream that ends
// with an Error, and a target that serves no streams, print the code and exit 1.
func TestStreamCommand(t *testing.T) {
	dir := startDev(t)
	ctx := context.Background()
	code, out, errOut := runCLI(ctx, "stream", "--to", "inference", "--kind", "json", "--data-dir", dir,
		"--data", `{"model":"mock","messages":[{"role":"user","content":"hi there"}]}`)
	if code != 0 || !strings.Contains(out, `{"text":"Mock`) || !strings.Contains(out, `"model":"mock"`) || !strings.HasSuffix(out, "\n") {
		t.Fatalf("stream to inference: exit %d\nstdout %q\nstderr %s", code, out, errOut)
	}
	if i, j := strings.Index(out, `{"text"`), strings.Index(out, `"model":"mock"`); i > j {
		t.Fatalf("summary before the text:\n%s", out)
	}

	code, out, errOut = runCLI(ctx, "stream", "--to", "inference", "--kind", "json", "--data-dir", dir,
		"--data", `{"model":"no-such-model","messages":[{"role":"user","content":"hi"}]}`)
	if code != 1 || out != "" || !strings.HasPrefix(errOut, "error: model_not_found: ") {
		t.Fatalf("stream with an unknown model: exit %d\nstdout %q\nstderr %s", code, out, errOut)
	}

	code, _, errOut = runCLI(ctx, "stream", "--to", "6ba7b810-9dad-11d1-80b4-00c04fd430c8", "--data", "{}", "--data-dir", dir)
	if code != 1 || !strings.HasPrefix(errOut, "error: unreachable: ") {
		t.Fatalf("stream to nobody: exit %d\nstderr %s", code, errOut)
	}
	code, _, errOut = runCLI(ctx, "stream", "--data", "{}", "--data-dir", dir)
	if code != 2 || !strings.Contains(errOut, "--to is required") {
		t.Fatalf("stream without --to: exit %d %s", code, errOut)
	}
}

// TestStreamToAgent: mxp stream reaches an agent that serves streams and no calls (as
// examples/multi-agent's coordinator): its chunks print in order, its request arrives as
// sent, and a stream it fails prints the agent's code.
func TestStreamToAgent(t *testing.T) {
	dir := startDev(t)
	info, err := readEdgeInfo(dir)
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Config{Name: "streamer", EdgeAddr: info.EdgeAddr, EdgeKey: info.PublicKey,
		KeyFile: filepath.Join(t.TempDir(), "streamer.key"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	a.HandleStream(func(ctx context.Context, s *agent.Stream) error {
		if string(s.Request()) == "fail" {
			return agent.Errorf(agent.CodeNotFound, "no reviewer is online")
		}
		for _, w := range []string{"got ", string(s.Request()), ": ", "one ", "two"} {
			if err := s.Send(ctx, []byte(w)); err != nil {
				return err
			}
		}
		return nil
	})
	active := make(chan struct{})
	var once sync.Once
	a.Lifecycle().OnTransition(func(tr agent.Transition) {
		if tr.To == agent.StateActive {
			once.Do(func() { close(active) })
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	select {
	case <-active:
	case err := <-done:
		t.Fatalf("agent: %v", err)
	}

	code, out, errOut := runCLI(context.Background(), "stream", "--to", "streamer", "--data", "hello", "--data-dir", dir)
	if code != 0 || out != "got hello: one two\n" {
		t.Fatalf("stream: exit %d\nstdout %q\nstderr %s", code, out, errOut)
	}
	code, out, errOut = runCLI(context.Background(), "stream", "--to", "streamer", "--data", "fail", "--data-dir", dir)
	if code != 1 || out != "" || errOut != "error: not_found: no reviewer is online\n" {
		t.Fatalf("failed stream: exit %d\nstdout %q\nstderr %q", code, out, errOut)
	}
	code, _, errOut = runCLI(context.Background(), "call", "--to", "streamer", "--data", "x", "--data-dir", dir)
	// It points to the stream the agent serves (it said only "serves no calls").
	want := "error: not_found: this agent serves no calls, only streams (try: mxp stream --to streamer --data-dir " + dir + ")\n"
	if code != 1 || errOut != want {
		t.Fatalf("call to a stream-only agent: exit %d\nstderr %q\nwant   %q", code, errOut, want)
	}
}
