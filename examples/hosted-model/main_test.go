package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mxp-mesh/mesh/examples/internal/meshtest"
)

// TestHostedModelExample runs the agent in an in-process mesh and asks its models through
// the inference service's OpenAI-compatible API, streamed, as `hosted-model ask` does.
func TestHostedModelExample(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := meshtest.New(t, quiet)
	a, err := NewAgent(Options{EdgeAddr: m.EdgeAddr, EdgeKey: m.EdgeKey, KeyFile: t.TempDir() + "/k", Name: "model-host"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	meshtest.Run(t, a)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var out strings.Builder
	if err := Ask(ctx, m.InferenceURL, "mxp/model-host/shout", "hello hosted world", &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != "HELLO HOSTED WORLD\n" {
		t.Fatalf("shout answered %q", out.String())
	}
	out.Reset()
	if err := Ask(ctx, m.InferenceURL, "mxp/model-host/mock", "hi", &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != "Mock reply to: hi\n" {
		t.Fatalf("the wrapped mock adapter answered %q", out.String())
	}
	err = Ask(ctx, m.InferenceURL, "mxp/model-host/whisper", "hi", &out)
	if err == nil || !strings.HasPrefix(err.Error(), "model_not_found (HTTP 404)") {
		t.Fatalf("a model the agent does not serve: %v", err)
	}
}
