package inference

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"

	api "github.com/mxp-mesh/mesh/pkg/api/inference"
	"github.com/mxp-mesh/mesh/services/inference/providertest"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func TestGenAISpans(t *testing.T) {
	fake := providertest.New(providertest.Anthropic, providertest.Reply{Words: []string{"hi"}, InputTokens: 11, OutputTokens: 1})
	defer fake.Close()
	fake.Push(providertest.Fault{Status: 529})
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	cfg := fakeConfig(KindAnthropic, fake.URL, Resilience{})
	vs := &virtualSleep{}
	svc, err := New(cfg, Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: prometheus.NewRegistry(),
		TracerProvider: tp, Sleep: vs.sleep})
	if err != nil {
		t.Fatal(err)
	}
	temp := 0.5
	req := chatReq("claude-x", "hello")
	req.Temperature, req.MaxTokens = &temp, 50
	if _, err := svc.Chat(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	_, err = svc.Chat(context.Background(), &ChatRequest{Request: api.Request{Model: "claude-x",
		Messages: []api.Message{{Role: "robot", Content: "x"}}}})
	if err == nil {
		t.Fatal("want an error")
	}
	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans ended, want 1 (invalid requests get none)", len(spans))
	}
	s := spans[0]
	eq(t, "name", s.Name(), "chat claude-x")
	attrs := map[attribute.Key]attribute.Value{}
	for _, a := range s.Attributes() {
		attrs[a.Key] = a.Value
	}
	want := map[string]any{
		"gen_ai.operation.name":      "chat",
		"gen_ai.system":              "anthropic",
		"gen_ai.provider.name":       "anthropic",
		"gen_ai.request.model":       "claude-x",
		"gen_ai.response.model":      "claude-x",
		"gen_ai.request.temperature": 0.5,
		"gen_ai.request.max_tokens":  int64(50),
		"gen_ai.usage.input_tokens":  int64(11),
		"gen_ai.usage.output_tokens": int64(1),
		"mxp.inference.attempts":     int64(2),
	}
	for k, v := range want {
		got, ok := attrs[attribute.Key(k)]
		if !ok {
			t.Errorf("missing %s", k)
			continue
		}
		if got.AsInterface() != v {
			t.Errorf("%s = %v, want %v", k, got.AsInterface(), v)
		}
	}
	fr, _ := json.Marshal(attrs["gen_ai.response.finish_reasons"].AsStringSlice())
	eq(t, "finish reasons", string(fr), `["stop"]`)
	var events []string
	for _, e := range s.Events() {
		events = append(events, e.Name)
	}
	if len(events) != 1 || events[0] != "retry" {
		t.Errorf("events %v, want one retry", events)
	}
}
