package agent

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mxp-mesh/mesh/services/inference"
	"github.com/mxp-mesh/mesh/services/inference/provider"
)

type sliceStream struct {
	chunks []provider.Chunk
	err    error
	closed bool
}

func (s *sliceStream) Recv() (provider.Chunk, error) {
	if len(s.chunks) == 0 {
		if s.err != nil {
			return provider.Chunk{}, s.err
		}
		return provider.Chunk{}, io.EOF
	}
	c := s.chunks[0]
	s.chunks = s.chunks[1:]
	return c, nil
}

func (s *sliceStream) Close() error { s.closed = true; return nil }

func TestCollectStream(t *testing.T) {
	s := &sliceStream{chunks: []provider.Chunk{
		{Text: "Hello "},
		{ToolCall: &provider.ToolCallDelta{Index: 1, ID: "b", Name: "second"}},
		{ToolCall: &provider.ToolCallDelta{Index: 0, ID: "a", Name: "first", Arguments: `{"x":`}},
		{Text: "world"},
		{ToolCall: &provider.ToolCallDelta{Index: 0, Arguments: `1}`}},
		{FinishReason: provider.FinishToolCalls, Usage: &provider.Usage{InputTokens: 3, OutputTokens: 4}},
	}}
	resp, err := CollectStream(s)
	if err != nil {
		t.Fatal(err)
	}
	m := AssistantMessage(resp)
	if m.Role != RoleAssistant || m.Content != "Hello world" || resp.FinishReason != provider.FinishToolCalls || resp.Usage.OutputTokens != 4 {
		t.Fatalf("resp = %+v", resp)
	}
	if len(m.ToolCalls) != 2 || m.ToolCalls[0].Name != "first" || m.ToolCalls[0].Arguments != `{"x":1}` || m.ToolCalls[1].ID != "b" {
		t.Fatalf("tool calls = %+v", m.ToolCalls)
	}
	if !s.closed {
		t.Fatal("stream not closed")
	}

	boom := errors.New("reset")
	if _, err := CollectStream(&sliceStream{chunks: []provider.Chunk{{Text: "x"}}, err: boom}); !errors.Is(err, boom) {
		t.Fatalf("stream error lost: %v", err)
	}
	if _, err := CollectStream(&sliceStream{chunks: []provider.Chunk{{ToolCall: &provider.ToolCallDelta{Arguments: "{}"}}}}); err == nil {
		t.Fatal("nameless tool call accepted")
	}
}

// The tool loop against the inference service's deterministic mock provider: the mock
// calls the tool named in the prompt with the JSON object in it, then reports the result.
func TestToolLoopWithMockProvider(t *testing.T) {
	var runs atomic.Int32
	box, err := NewToolbox(newWeatherTool(t, &runs))
	if err != nil {
		t.Fatal(err)
	}
	loop := ToolLoop{Model: AdapterModel{Adapter: &provider.Mock{}}, Tools: box}
	res, err := loop.Run(context.Background(), NewChatRequest("mock",
		Message{Role: RoleUser, Content: `use weather {"city":"Oslo"}`}))
	if err != nil {
		t.Fatal(err)
	}
	if runs.Load() != 1 || res.Steps != 2 || res.ToolCalls != 1 {
		t.Fatalf("runs %d, steps %d, calls %d", runs.Load(), res.Steps, res.ToolCalls)
	}
	want := `Tool weather returned: {"city":"Oslo","temp_c":21.5}.`
	if res.Answer.Content != want {
		t.Fatalf("answer = %q, want %q", res.Answer.Content, want)
	}
	if res.Provider != "mock" || res.Model != "mock" {
		t.Fatalf("model %q provider %q", res.Model, res.Provider)
	}
	if _, err := (AdapterModel{Adapter: &provider.Mock{}}).Chat(context.Background(), &ChatRequest{}); !strings.Contains(err.Error(), "no messages") {
		t.Fatalf("adapter error lost: %v", err)
	}
}

// The inference service itself is a ChatModel: the tool loop runs against it in process
// with its built-in configuration (the mock provider), retries and budgeting included.
func TestToolLoopWithInferenceService(t *testing.T) {
	svc, err := inference.New(inference.Defaults(), inference.Deps{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	var runs atomic.Int32
	box, err := NewToolbox(newWeatherTool(t, &runs))
	if err != nil {
		t.Fatal(err)
	}
	var model ChatModel = svc
	res, err := (&ToolLoop{Model: model, Tools: box}).Run(context.Background(),
		NewChatRequest("", Message{Role: RoleUser, Content: `use weather {"city":"Bergen"}`}))
	if err != nil {
		t.Fatal(err)
	}
	if runs.Load() != 1 || res.Answer.Content != `Tool weather returned: {"city":"Bergen","temp_c":21.5}.` || res.Provider != "mock" {
		t.Fatalf("result = %+v", res)
	}
}
