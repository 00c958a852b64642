package llm

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mxp-mesh/mesh/pkg/api/inference"
)

func TestCollectStream(t *testing.T) {
	s := &sliceStream{chunks: []inference.Chunk{
		{Text: "Hello "},
		{ToolCall: &inference.ToolCallDelta{Index: 1, ID: "b", Name: "second"}},
		{ToolCall: &inference.ToolCallDelta{Index: 0, ID: "a", Name: "first", Arguments: `{"x":`}},
		{Text: "world"},
		{ToolCall: &inference.ToolCallDelta{Index: 0, Arguments: `1}`}},
		{FinishReason: inference.FinishToolCalls, Usage: &inference.Usage{InputTokens: 3, OutputTokens: 4}},
	}}
	resp, err := CollectStream(s)
	if err != nil {
		t.Fatal(err)
	}
	m := AssistantMessage(resp)
	if m.Role != RoleAssistant || m.Content != "Hello world" || resp.FinishReason != inference.FinishToolCalls || resp.Usage.OutputTokens != 4 {
		t.Fatalf("resp = %+v", resp)
	}
	if len(m.ToolCalls) != 2 || m.ToolCalls[0].Name != "first" || m.ToolCalls[0].Arguments != `{"x":1}` || m.ToolCalls[1].ID != "b" {
		t.Fatalf("tool calls = %+v", m.ToolCalls)
	}
	if !s.closed {
		t.Fatal("stream not closed")
	}

	boom := errors.New("reset")
	if _, err := CollectStream(&sliceStream{chunks: []inference.Chunk{{Text: "x"}}, err: boom}); !errors.Is(err, boom) {
		t.Fatalf("stream error lost: %v", err)
	}
	if _, err := CollectStream(&sliceStream{chunks: []inference.Chunk{{ToolCall: &inference.ToolCallDelta{Arguments: "{}"}}}}); err == nil {
		t.Fatal("nameless tool call accepted")
	}
}

// The tool loop against a model adapter: the script calls the tool named in the prompt
// with the JSON object in it, then reports the result.
func TestToolLoopWithAdapter(t *testing.T) {
	var runs atomic.Int32
	box, err := NewToolbox(newWeatherTool(t, &runs))
	if err != nil {
		t.Fatal(err)
	}
	loop := ToolLoop{Model: AdapterModel{Adapter: scriptAdapter{}}, Tools: box}
	res, err := loop.Run(context.Background(), NewChatRequest("scripted",
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
	if res.Provider != "script" || res.Model != "scripted" {
		t.Fatalf("model %q provider %q", res.Model, res.Provider)
	}
	if _, err := (AdapterModel{Adapter: scriptAdapter{}}).Chat(context.Background(), &ChatRequest{}); err == nil || !strings.Contains(err.Error(), "no messages") {
		t.Fatalf("adapter error lost: %v", err)
	}
}
