package llm

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mxp-mesh/mesh/pkg/agent"
	"github.com/mxp-mesh/mesh/pkg/api/inference"
)

// scriptedModel answers with its script in order and records what it was sent.
type scriptedModel struct {
	script []ChatResponse
	seen   []ChatRequest
	err    error
}

func (m *scriptedModel) Chat(_ context.Context, req *ChatRequest) (*ChatResponse, error) {
	cp := *req
	cp.Messages = append([]Message(nil), req.Messages...)
	m.seen = append(m.seen, cp)
	if m.err != nil {
		return nil, m.err
	}
	i := len(m.seen) - 1
	if i >= len(m.script) {
		i = len(m.script) - 1
	}
	resp := m.script[i]
	return &resp, nil
}

func callTools(calls ...ToolCall) ChatResponse {
	return ChatResponse{Response: inference.Response{ToolCalls: calls, FinishReason: inference.FinishToolCalls, Usage: Usage{InputTokens: 1, OutputTokens: 1}}}
}

func answer(text string) ChatResponse {
	return ChatResponse{Response: inference.Response{Text: text, FinishReason: inference.FinishStop, Usage: Usage{InputTokens: 2, OutputTokens: 3}}}
}

func TestToolLoop(t *testing.T) {
	var runs atomic.Int32
	box, err := NewToolbox(newWeatherTool(t, &runs))
	if err != nil {
		t.Fatal(err)
	}
	user := []Message{{Role: RoleUser, Content: "weather in Oslo?"}}
	tests := []struct {
		name      string
		script    []ChatResponse
		maxSteps  int
		wantErr   agent.Code
		wantSteps int
		wantRuns  int32
		wantTool  []string // contents of the tool messages, in order
		wantFinal string
	}{
		{
			name:      "answers at once",
			script:    []ChatResponse{answer("sunny")},
			wantSteps: 1, wantFinal: "sunny",
		},
		{
			name: "one tool call then answer",
			script: []ChatResponse{
				callTools(ToolCall{ID: "c1", Name: "weather", Arguments: (`{"city":"Oslo"}`)}),
				answer("21.5 in Oslo"),
			},
			wantSteps: 2, wantRuns: 1, wantFinal: "21.5 in Oslo",
			wantTool: []string{`{"city":"Oslo","temp_c":21.5}`},
		},
		{
			name: "bad arguments and unknown tool are fed back",
			script: []ChatResponse{
				callTools(
					ToolCall{ID: "c1", Name: "weather", Arguments: (`{"town":"Oslo"}`)},
					ToolCall{ID: "c2", Name: "stocks", Arguments: (`{}`)},
					ToolCall{ID: "c3", Name: "weather", Arguments: (`{"city":"nowhere"}`)},
				),
				answer("sorry"),
			},
			wantSteps: 2, wantRuns: 1, wantFinal: "sorry",
			wantTool: []string{`"code":"invalid_argument"`, `"code":"not_found"`, `"code":"not_found"`},
		},
		{
			name:      "step limit",
			script:    []ChatResponse{callTools(ToolCall{ID: "c", Name: "weather", Arguments: (`{"city":"Oslo"}`)})},
			maxSteps:  3,
			wantErr:   agent.CodeStepLimit,
			wantSteps: 3, wantRuns: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runs.Store(0)
			model := &scriptedModel{script: tt.script}
			var observed int
			loop := ToolLoop{Model: model, Tools: box, MaxSteps: tt.maxSteps, OnToolCall: func(ToolCall, json.RawMessage, error) { observed++ }}
			res, err := loop.Run(context.Background(), NewChatRequest("mock", user...))
			if agent.CodeOf(err) != tt.wantErr {
				t.Fatalf("err = %v, want code %q", err, tt.wantErr)
			}
			if res.Steps != tt.wantSteps || runs.Load() != tt.wantRuns || len(model.seen) != tt.wantSteps {
				t.Fatalf("steps %d, runs %d, model calls %d", res.Steps, runs.Load(), len(model.seen))
			}
			if observed != res.ToolCalls {
				t.Fatalf("OnToolCall saw %d calls, result says %d", observed, res.ToolCalls)
			}
			if tt.wantFinal != "" && res.Answer.Content != tt.wantFinal {
				t.Fatalf("answer = %q", res.Answer.Content)
			}
			var toolMsgs []Message
			for _, m := range res.Messages {
				if m.Role == RoleTool {
					toolMsgs = append(toolMsgs, m)
				}
			}
			for i, want := range tt.wantTool {
				if i >= len(toolMsgs) || !strings.Contains(toolMsgs[i].Content, want) {
					t.Fatalf("tool message %d = %+v, want it to contain %s", i, toolMsgs, want)
				}
			}
			// The model sees the tools and the growing conversation every step.
			for i, req := range model.seen {
				if len(req.Tools) != 1 || req.Tools[0].Name != "weather" || req.Model != "mock" {
					t.Fatalf("step %d request tools = %+v", i, req.Tools)
				}
				if i > 0 && len(req.Messages) <= len(model.seen[i-1].Messages) {
					t.Fatalf("step %d did not see the previous turn", i)
				}
			}
			if res.Messages[0].Content != "weather in Oslo?" {
				t.Fatal("conversation lost the user message")
			}
			if res.Usage.OutputTokens == 0 {
				t.Fatal("usage not summed")
			}
		})
	}
}

func TestToolLoopErrors(t *testing.T) {
	boom := errors.New("provider down")
	_, err := (&ToolLoop{Model: &scriptedModel{err: boom}}).Run(context.Background(), ChatRequest{})
	if !errors.Is(err, boom) {
		t.Fatalf("model error lost: %v", err)
	}
	if _, err := (&ToolLoop{}).Run(context.Background(), ChatRequest{}); err == nil {
		t.Fatal("nil model accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (&ToolLoop{Model: &scriptedModel{script: []ChatResponse{answer("x")}}}).Run(ctx, ChatRequest{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	// Tool calls without a toolbox are answered with not_found, and the loop goes on.
	model := &scriptedModel{script: []ChatResponse{callTools(ToolCall{ID: "1", Name: "x"}), answer("done")}}
	res, err := (&ToolLoop{Model: ChatModelFunc(model.Chat)}).Run(context.Background(), ChatRequest{})
	if err != nil || res.Answer.Content != "done" || !strings.Contains(res.Messages[1].Content, "not_found") {
		t.Fatalf("no toolbox: %+v, %v", res, err)
	}
}
