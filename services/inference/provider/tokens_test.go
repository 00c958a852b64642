package provider_test

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	api "github.com/mxp-mesh/mesh/pkg/api/inference"
	"github.com/mxp-mesh/mesh/services/inference/provider"
)

// Reference counts are from OpenAI's cl100k_base tokenizer.
func TestEstimateTokensKnownTexts(t *testing.T) {
	cases := []struct {
		text string
		want int
	}{
		{"Hello world", 2},
		{"The quick brown fox jumps over the lazy dog", 9},
		{"The quick brown fox jumps over the lazy dog.", 10},
		{"Hello, world!", 4},
		{"", 0},
		{"你好世界", 4},
	}
	for _, c := range cases {
		got := provider.EstimateTokens(c.text)
		lo, hi := c.want*80/100, (c.want*120+99)/100
		if got < lo || got > hi {
			t.Errorf("EstimateTokens(%q) = %d, reference %d (allowed %d..%d)", c.text, got, c.want, lo, hi)
		}
	}
}

func TestEstimateTokensProse(t *testing.T) {
	// 4 characters per token is the commonly quoted average for English prose.
	text := strings.Repeat("Agents call models through the mesh; operators get one place where keys, limits, retries, fallbacks and costs are handled. ", 20)
	got := provider.EstimateTokens(text)
	ref := len(text) / 4
	if got < ref*80/100 || got > ref*120/100 {
		t.Errorf("prose estimate %d, chars/4 reference %d", got, ref)
	}
}

func TestEstimateMonotonic(t *testing.T) {
	a := provider.EstimateTokens("one two three")
	b := provider.EstimateTokens("one two three four")
	if b <= a {
		t.Errorf("adding a word did not add tokens: %d -> %d", a, b)
	}
}

func TestMockDeterministicAndTools(t *testing.T) {
	tools := []api.Tool{{Name: "get_weather", Parameters: json.RawMessage(`{"type":"object"}`)}}
	cases := []struct {
		name     string
		req      api.Request
		text     string
		toolCall string
		toolArgs string
		finish   api.FinishReason
	}{
		{"echo", api.Request{Messages: []api.Message{{Role: api.RoleUser, Content: "hi there"}}},
			"Mock reply to: hi there", "", "", api.FinishStop},
		{"max tokens", api.Request{MaxTokens: 2, Messages: []api.Message{{Role: api.RoleUser, Content: "hi there"}}},
			"Mock reply ", "", "", api.FinishLength},
		{"tool named in prompt", api.Request{Tools: tools, Messages: []api.Message{{Role: api.RoleUser,
			Content: `use get_weather with {"city":"Paris"}`}}}, "", "get_weather", `{"city":"Paris"}`, api.FinishToolCalls},
		{"tool choice none", api.Request{Tools: tools, ToolChoice: &api.ToolChoice{Mode: "none"},
			Messages: []api.Message{{Role: api.RoleUser, Content: "use get_weather"}}}, "Mock reply to: use get_weather", "", "", api.FinishStop},
		{"tool required", api.Request{Tools: tools, ToolChoice: &api.ToolChoice{Mode: "required"},
			Messages: []api.Message{{Role: api.RoleUser, Content: "hello"}}}, "", "get_weather", "{}", api.FinishToolCalls},
		{"tool result", api.Request{Tools: tools, Messages: []api.Message{
			{Role: api.RoleUser, Content: "use get_weather"},
			{Role: api.RoleAssistant, ToolCalls: []api.ToolCall{{ID: "c1", Name: "get_weather", Arguments: "{}"}}},
			{Role: api.RoleTool, ToolCallID: "c1", Content: "sunny"}}}, "Tool get_weather returned: sunny.", "", "", api.FinishStop},
		{"json", api.Request{ResponseFormat: &api.ResponseFormat{Type: "json_object"},
			Messages: []api.Message{{Role: api.RoleUser, Content: "x"}}}, `{"reply":"x"}`, "", "", api.FinishStop},
	}
	m := &provider.Mock{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var ids []string
			for range 2 {
				s, err := m.Stream(context.Background(), &c.req)
				if err != nil {
					t.Fatal(err)
				}
				r, err := provider.Collect(s)
				if err != nil {
					t.Fatal(err)
				}
				assertEq(t, r.Text, c.text)
				assertEq(t, r.FinishReason, c.finish)
				if c.toolCall != "" {
					if len(r.ToolCalls) != 1 {
						t.Fatalf("tool calls %v", r.ToolCalls)
					}
					assertEq(t, r.ToolCalls[0].Name, c.toolCall)
					assertEq(t, r.ToolCalls[0].Arguments, c.toolArgs)
					ids = append(ids, r.ToolCalls[0].ID)
				}
				if r.Usage.InputTokens == 0 {
					t.Error("no usage")
				}
			}
			if len(ids) == 2 {
				assertEq(t, ids[0], ids[1])
			}
		})
	}
}

func fuzzStream(f *testing.F, mk func(io.ReadCloser) api.Stream, seeds ...string) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	provider.NewOpenAI(provider.HTTPConfig{APIKey: fuzzKey}) // registered: a malformed chunk quoting it must not pass it on
	f.Add([]byte("data: {\"oops\": \"" + fuzzKey + "\"\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := mk(io.NopCloser(strings.NewReader(string(data))))
		for range 10000 {
			if _, err := s.Recv(); err != nil {
				if strings.Contains(err.Error(), fuzzKey) || strings.Contains(err.Error(), hostileToken) {
					t.Fatalf("registered key or credential-shaped token in the stream error %q", err)
				}
				if e := provider.AsError(err); e != nil && upstreamText(e.Message) {
					checkExcerpt(t, e.Message)
				}
				return
			}
		}
		t.Fatal("stream did not end")
	})
}

// upstreamText reports whether an error message is the upstream's own text (a stream's
// error event), which must be an excerpt, rather than our own wording around a quoted
// excerpt (a malformed chunk, an interrupted read).
func upstreamText(msg string) bool {
	return !strings.HasPrefix(msg, "malformed chunk ") && !strings.HasPrefix(msg, "stream interrupted: ")
}

func FuzzOpenAIStream(f *testing.F) {
	fuzzStream(f, provider.NewOpenAIStream, openAIErrorEvent(hostileErrorText), "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n",
		"data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"a\",\"function\":{\"name\":\"f\",\"arguments\":\"{\"}}]}}]}\n\n")
}

func FuzzAnthropicStream(f *testing.F) {
	fuzzStream(f, provider.NewAnthropicStream, anthropicErrorEvent(hostileErrorText), "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3}}}\n\n"+
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\"}}\n\n"+
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}\n\n"+
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
}

func FuzzGeminiStream(f *testing.F) {
	fuzzStream(f, provider.NewGeminiStream, geminiErrorEvent(hostileErrorText), "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"},{\"functionCall\":{\"name\":\"f\",\"args\":{}}}]},\"finishReason\":\"STOP\"}]}\n\n")
}

func FuzzOllamaStream(f *testing.F) {
	fuzzStream(f, provider.NewOllamaStream, ollamaErrorEvent(hostileErrorText), "{\"message\":{\"content\":\"a\"},\"done\":false}\n{\"done\":true,\"eval_count\":1}\n")
}

func FuzzEstimateTokens(f *testing.F) {
	f.Add("Hello, world! 12345 你好")
	f.Fuzz(func(t *testing.T, s string) {
		if n := provider.EstimateTokens(s); n < 0 || n > len(s) {
			t.Fatalf("EstimateTokens(%q) = %d", s, n)
		}
	})
}
