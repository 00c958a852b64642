package provider_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	api "github.com/mxp-mesh/mesh/pkg/api/inference"
	"github.com/mxp-mesh/mesh/services/inference/provider"
	"github.com/mxp-mesh/mesh/services/inference/providertest"
)

var update = flag.Bool("update", false, "rewrite golden files")

func ptr[T any](v T) *T { return &v }

// goldenRequest exercises every mapped field: system prompt, a system message, a tool call
// and its result, tools, tool choice, sampling settings and stop sequences.
func goldenRequest(model string) *api.Request {
	return &api.Request{
		Model:  model,
		System: "You are terse.",
		Messages: []api.Message{
			{Role: api.RoleSystem, Content: "Answer in English."},
			{Role: api.RoleUser, Content: "What is the weather in Paris?"},
			{Role: api.RoleAssistant, ToolCalls: []api.ToolCall{{ID: "call_1", Name: "get_weather", Arguments: `{"city":"Paris"}`}}},
			{Role: api.RoleTool, ToolCallID: "call_1", Content: `{"temp_c":21}`},
			{Role: api.RoleUser, Content: "And in Rome?"},
		},
		Temperature: ptr(0.2),
		MaxTokens:   256,
		Stop:        []string{"END"},
		Tools: []api.Tool{{Name: "get_weather", Description: "Current weather for a city",
			Parameters: json.RawMessage(`{"$schema":"http://json-schema.org/draft-07/schema#","type":"object","additionalProperties":false,` +
				`"properties":{"city":{"type":"string"},"unit":{"type":["string","null"],"enum":["c","f"]}},"required":["city"]}`)}},
		ToolChoice: &api.ToolChoice{Mode: api.ToolChoiceAuto},
	}
}

var goldenReply = providertest.Reply{
	Words:        []string{"Checking ", "Rome."},
	ToolCalls:    []providertest.ToolCall{{ID: "call_2", Name: "get_weather", Arguments: `{"city":"Rome"}`}},
	InputTokens:  42,
	OutputTokens: 7,
}

type kindCase struct {
	kind  string
	model string
	make  func(base, key string) api.ModelAdapter
}

var kinds = []kindCase{
	{providertest.OpenAI, "gpt-4o-mini", func(b, k string) api.ModelAdapter {
		return provider.NewOpenAI(provider.HTTPConfig{BaseURL: b + "/v1", APIKey: k})
	}},
	{providertest.Anthropic, "claude-sonnet-4-5", func(b, k string) api.ModelAdapter {
		return provider.NewAnthropic(provider.HTTPConfig{BaseURL: b, APIKey: k})
	}},
	{providertest.Gemini, "gemini-2.5-flash", func(b, k string) api.ModelAdapter {
		return provider.NewGemini(provider.HTTPConfig{BaseURL: b, APIKey: k})
	}},
	{providertest.Ollama, "llama3.2", func(b, k string) api.ModelAdapter {
		return provider.NewOllama(provider.HTTPConfig{BaseURL: strings.TrimPrefix(b, "http://")})
	}},
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	var v any
	if err := json.Unmarshal(got, &v); err != nil {
		t.Fatalf("%s: not JSON: %v\n%s", name, err, got)
	}
	pretty, _ := json.MarshalIndent(v, "", "  ")
	pretty = append(pretty, '\n')
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, pretty, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create)", err)
	}
	if !bytes.Equal(pretty, want) {
		t.Errorf("%s differs from golden:\ngot:\n%s\nwant:\n%s", name, pretty, want)
	}
}

func collectChunks(t *testing.T, s api.Stream) []api.Chunk {
	t.Helper()
	defer s.Close()
	var out []api.Chunk
	for {
		c, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
		out = append(out, c)
	}
}

func TestAdapterGolden(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.kind, func(t *testing.T) {
			srv := providertest.New(k.kind, goldenReply)
			defer srv.Close()
			a := k.make(srv.URL, "sk-upstream-secret")
			s, err := a.Stream(context.Background(), goldenRequest(k.model))
			if err != nil {
				t.Fatal(err)
			}
			chunks := collectChunks(t, s)
			reqs := srv.Requests()
			if len(reqs) != 1 {
				t.Fatalf("server saw %d requests", len(reqs))
			}
			golden(t, k.kind+"_request.json", reqs[0].Body)
			b, _ := json.Marshal(chunks)
			golden(t, k.kind+"_stream.json", b)
			var acc api.Accumulator
			for _, c := range chunks {
				acc.Add(c)
			}
			b, _ = json.Marshal(acc.Response())
			golden(t, k.kind+"_response.json", b)

			r := reqs[0]
			switch k.kind {
			case providertest.OpenAI:
				assertEq(t, r.Path, "/v1/chat/completions")
				assertEq(t, r.Header.Get("Authorization"), "Bearer sk-upstream-secret")
			case providertest.Anthropic:
				assertEq(t, r.Path, "/v1/messages")
				assertEq(t, r.Header.Get("X-Api-Key"), "sk-upstream-secret")
				assertEq(t, r.Header.Get("Anthropic-Version"), provider.AnthropicVersion)
			case providertest.Gemini:
				assertEq(t, r.Path, "/v1beta/models/gemini-2.5-flash:streamGenerateContent")
				assertEq(t, r.Query, "alt=sse")
				assertEq(t, r.Header.Get("X-Goog-Api-Key"), "sk-upstream-secret")
			case providertest.Ollama:
				assertEq(t, r.Path, "/api/chat")
			}
		})
	}
}

func assertEq[T comparable](t *testing.T, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("got %v, want %v", got, want)
	}
}

// TestAdapterTextOnly checks the plain-text path and usage of every adapter.
func TestAdapterTextOnly(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.kind, func(t *testing.T) {
			srv := providertest.New(k.kind, providertest.Reply{Words: []string{"Hello", ", ", "world"}, InputTokens: 5, OutputTokens: 3})
			defer srv.Close()
			s, err := k.make(srv.URL, "").Stream(context.Background(), &api.Request{Model: k.model,
				Messages: []api.Message{{Role: api.RoleUser, Content: "hi"}}})
			if err != nil {
				t.Fatal(err)
			}
			resp, err := provider.Collect(s)
			if err != nil {
				t.Fatal(err)
			}
			assertEq(t, resp.Text, "Hello, world")
			assertEq(t, resp.FinishReason, api.FinishStop)
			assertEq(t, resp.Usage, api.Usage{InputTokens: 5, OutputTokens: 3})
		})
	}
}

func TestAdapterFaults(t *testing.T) {
	reply := providertest.Reply{Words: []string{"a ", "b ", "c ", "d"}, InputTokens: 1, OutputTokens: 4}
	cases := []struct {
		name      string
		fault     providertest.Fault
		code      provider.Code
		retryAft  time.Duration
		atRecv    bool // the error comes from Recv, not Stream
		retryable bool
	}{
		{"429 with Retry-After", providertest.Fault{Status: 429, RetryAfter: "2"}, provider.CodeRateLimited, 2 * time.Second, false, true},
		{"500", providertest.Fault{Status: 500}, provider.CodeProviderError, 0, false, true},
		{"529 overloaded", providertest.Fault{Status: 529}, provider.CodeOverloaded, 0, false, true},
		{"401", providertest.Fault{Status: 401}, provider.CodeUnauthenticated, 0, false, false},
		{"400", providertest.Fault{Status: 400}, provider.CodeInvalidRequest, 0, false, false},
		{"reset mid-stream", providertest.Fault{ResetAfter: 2}, provider.CodeProviderError, 0, true, true},
		{"malformed chunk", providertest.Fault{Malformed: true}, provider.CodeProviderError, 0, true, true},
	}
	for _, k := range kinds {
		for _, tc := range cases {
			t.Run(k.kind+"/"+tc.name, func(t *testing.T) {
				srv := providertest.New(k.kind, reply)
				defer srv.Close()
				srv.Push(tc.fault)
				s, err := k.make(srv.URL, "k").Stream(context.Background(), &api.Request{Model: k.model,
					Messages: []api.Message{{Role: api.RoleUser, Content: "hi"}}})
				if !tc.atRecv {
					if err == nil {
						t.Fatal("want an error from Stream")
					}
				} else {
					if err != nil {
						t.Fatalf("Stream: %v", err)
					}
					_, err = provider.Collect(s)
					if err == nil {
						t.Fatal("want an error from Recv")
					}
				}
				e := provider.AsError(err)
				assertEq(t, e.Code, tc.code)
				assertEq(t, e.Retryable, tc.retryable)
				assertEq(t, e.RetryAfter, tc.retryAft)
			})
		}
	}
}

func TestSafetyAndRefusal(t *testing.T) {
	cases := []struct {
		kind, finish string
		want         api.FinishReason
	}{
		{providertest.Gemini, "SAFETY", api.FinishContentFilter},
		{providertest.OpenAI, "content_filter", api.FinishContentFilter},
		{providertest.Anthropic, "refusal", api.FinishRefusal},
	}
	for _, tc := range cases {
		t.Run(tc.kind, func(t *testing.T) {
			var k kindCase
			for _, x := range kinds {
				if x.kind == tc.kind {
					k = x
				}
			}
			srv := providertest.New(tc.kind, providertest.Reply{Words: []string{"I "}, Finish: tc.finish})
			defer srv.Close()
			s, err := k.make(srv.URL, "k").Stream(context.Background(), &api.Request{Model: k.model,
				Messages: []api.Message{{Role: api.RoleUser, Content: "bad"}}})
			if err != nil {
				t.Fatal(err)
			}
			resp, err := provider.Collect(s)
			if err != nil {
				t.Fatalf("a safety block must not be an error: %v", err)
			}
			assertEq(t, resp.FinishReason, tc.want)
			if tc.want != api.FinishContentFilter || tc.kind == providertest.Gemini {
				if resp.Refusal == "" {
					t.Error("want a refusal message")
				}
			}
		})
	}
}

func TestGeminiPromptBlocked(t *testing.T) {
	body := "data: {\"promptFeedback\":{\"blockReason\":\"SAFETY\"},\"usageMetadata\":{\"promptTokenCount\":4}}\n\n"
	resp, err := provider.Collect(provider.NewGeminiStream(io.NopCloser(strings.NewReader(body))))
	if err != nil {
		t.Fatal(err)
	}
	assertEq(t, resp.FinishReason, api.FinishContentFilter)
	if !strings.Contains(resp.Refusal, "SAFETY") {
		t.Errorf("refusal %q", resp.Refusal)
	}
}

func TestGeminiSchema(t *testing.T) {
	var in map[string]any
	json.Unmarshal([]byte(`{"$schema":"x","type":"object","additionalProperties":false,"properties":{
		"a":{"type":["integer","null"]},"b":{"const":3},"c":{"oneOf":[{"type":"string"},{"type":"number"}]},
		"d":{"type":"array","items":{"type":"string","$ref":"#/x"}},"e":{"enum":[1,2]}},"required":["a"]}`), &in)
	got, _ := json.Marshal(provider.GeminiSchema(in))
	want := `{"properties":{"a":{"nullable":true,"type":"integer"},"b":{"enum":["3"]},"c":{"anyOf":[{"type":"string"},{"type":"number"}]},"d":{"items":{"type":"string"},"type":"array"},"e":{"enum":["1","2"]}},"required":["a"],"type":"object"}`
	assertEq(t, string(got), want)
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
	}{
		{"", 0}, {"3", 3 * time.Second}, {"0.5", 500 * time.Millisecond}, {"-1", 0}, {"abc", 0},
		{"Wed, 01 Jan 2025 00:00:10 GMT", 10 * time.Second}, {"Tue, 31 Dec 2024 00:00:10 GMT", 0},
	}
	for _, c := range cases {
		assertEq(t, provider.ParseRetryAfter(c.in, now), c.want)
	}
}
