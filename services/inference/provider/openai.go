package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	api "github.com/mxp-mesh/mesh/pkg/api/inference"
	"github.com/mxp-mesh/mesh/pkg/common/security"
	"github.com/mxp-mesh/mesh/services/inference/internal/openai"
)

// DefaultOpenAIBaseURL is used when OpenAIConfig.BaseURL is empty.
const DefaultOpenAIBaseURL = "https://api.openai.com/v1"

// HTTPConfig is what every HTTP adapter is built with.
type HTTPConfig struct {
	// BaseURL overrides the provider's public endpoint (a proxy, a compatible server, a
	// test double).
	BaseURL string
	// APIKey is the upstream credential. It is sent only to BaseURL.
	APIKey string
	// Client defaults to a client with no overall timeout (the caller's context bounds
	// each request).
	Client *http.Client
}

// registerKey makes the adapter's key one of the secrets scrubbed from every text that
// leaves the mesh (security.Scrub), whoever built the adapter.
func (c HTTPConfig) registerKey() {
	security.RegisterSecrets(security.NewSecret(c.APIKey))
}

func (c HTTPConfig) client() *http.Client {
	if c.Client != nil {
		return c.Client
	}
	return http.DefaultClient
}

// OpenAI speaks the Chat Completions API, always streamed (SSE) upstream.
type OpenAI struct {
	cfg  HTTPConfig
	base string
}

// NewOpenAI returns an OpenAI adapter.
func NewOpenAI(cfg HTTPConfig) *OpenAI {
	cfg.registerKey()
	return &OpenAI{cfg: cfg, base: cfg.baseURL(DefaultOpenAIBaseURL)}
}

// Name implements ModelAdapter.
func (o *OpenAI) Name() string { return "openai" }

type oaMessage struct {
	Role       string            `json:"role"`
	Content    *string           `json:"content"`
	ToolCalls  []openai.ToolCall `json:"tool_calls,omitempty"`
	ToolCallID string            `json:"tool_call_id,omitempty"`
}

type oaRequest struct {
	Model               string          `json:"model"`
	Messages            []oaMessage     `json:"messages"`
	Temperature         *float64        `json:"temperature,omitempty"`
	TopP                *float64        `json:"top_p,omitempty"`
	MaxCompletionTokens int             `json:"max_completion_tokens,omitempty"`
	Stop                []string        `json:"stop,omitempty"`
	Tools               []openai.Tool   `json:"tools,omitempty"`
	ToolChoice          any             `json:"tool_choice,omitempty"`
	ResponseFormat      json.RawMessage `json:"response_format,omitempty"`
	Stream              bool            `json:"stream"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options,omitempty"`
}

// BuildOpenAIRequest maps a Request to the Chat Completions body (exported for golden
// tests and for the OpenAI-compatible front end).
func BuildOpenAIRequest(req *api.Request) (any, error) {
	out := oaRequest{Model: req.Model, Temperature: req.Temperature, TopP: req.TopP,
		MaxCompletionTokens: req.MaxTokens, Stop: req.Stop, Stream: true}
	out.StreamOptions = &struct {
		IncludeUsage bool `json:"include_usage"`
	}{true}
	if sys := systemPrompt(req); sys != "" {
		out.Messages = append(out.Messages, oaMessage{Role: "system", Content: &sys})
	}
	for _, m := range req.Messages {
		switch m.Role {
		case api.RoleSystem:
			continue
		case api.RoleUser, api.RoleAssistant, api.RoleTool:
		default:
			return nil, Errorf(CodeInvalidRequest, "unknown role %q", m.Role)
		}
		content := m.Content
		om := oaMessage{Role: string(m.Role), Content: &content, ToolCallID: m.ToolCallID}
		if m.Role == api.RoleAssistant && content == "" && len(m.ToolCalls) > 0 {
			om.Content = nil
		}
		for _, tc := range m.ToolCalls {
			var c openai.ToolCall
			c.ID, c.Type = tc.ID, "function"
			c.Function.Name, c.Function.Arguments = tc.Name, tc.Arguments
			if c.Function.Arguments == "" {
				c.Function.Arguments = "{}"
			}
			om.ToolCalls = append(om.ToolCalls, c)
		}
		out.Messages = append(out.Messages, om)
	}
	for _, t := range req.Tools {
		var ot openai.Tool
		ot.Type = "function"
		ot.Function.Name, ot.Function.Description, ot.Function.Parameters = t.Name, t.Description, t.Parameters
		out.Tools = append(out.Tools, ot)
	}
	if tc := req.ToolChoice; tc != nil {
		switch tc.Mode {
		case api.ToolChoiceAuto, api.ToolChoiceNone, api.ToolChoiceRequired:
			out.ToolChoice = tc.Mode
		case api.ToolChoiceTool:
			out.ToolChoice = map[string]any{"type": "function", "function": map[string]string{"name": tc.Name}}
		default:
			return nil, Errorf(CodeInvalidRequest, "unknown tool choice %q", tc.Mode)
		}
	}
	if rf := req.ResponseFormat; rf != nil {
		var v any
		switch rf.Type {
		case api.FormatText, "":
		case api.FormatJSONObject:
			v = map[string]string{"type": "json_object"}
		case api.FormatJSONSchema:
			name := rf.Name
			if name == "" {
				name = "response"
			}
			v = map[string]any{"type": "json_schema", "json_schema": map[string]any{
				"name": name, "schema": rf.Schema, "strict": true}}
		default:
			return nil, Errorf(CodeInvalidRequest, "unknown response format %q", rf.Type)
		}
		if v != nil {
			out.ResponseFormat, _ = json.Marshal(v)
		}
	}
	return out, nil
}

// Stream implements ModelAdapter.
func (o *OpenAI) Stream(ctx context.Context, req *api.Request) (api.Stream, error) {
	body, err := BuildOpenAIRequest(req)
	if err != nil {
		return nil, err
	}
	h := http.Header{"Accept": {"text/event-stream"}}
	if o.cfg.APIKey != "" {
		h.Set("Authorization", "Bearer "+o.cfg.APIKey)
	}
	resp, err := httpPost(ctx, o.cfg.client(), o.Name(), o.base+"/chat/completions", h, body, openAIErrorMessage)
	if err != nil {
		return nil, err
	}
	return NewOpenAIStream(resp.Body), nil
}

func openAIErrorMessage(data []byte) string {
	var e openai.ErrorBody
	if json.Unmarshal(data, &e) != nil {
		return ""
	}
	if c, ok := e.Error.Code.(string); ok && c != "" && !strings.Contains(e.Error.Message, c) {
		return c + ": " + e.Error.Message
	}
	return e.Error.Message
}

// NewOpenAIStream decodes a Chat Completions SSE body (chat.completion.chunk objects
// ending with "data: [DONE]"). Exported for the fuzz and golden tests.
func NewOpenAIStream(body io.ReadCloser) api.Stream {
	sse := newSSEReader(body)
	var finish api.FinishReason
	var usage *api.Usage
	done := false
	var c openai.Chunk
	var chunks []api.Chunk // reused: chunkStream takes an event's chunks out before decoding the next
	decode := func() ([]api.Chunk, error) {
		if done {
			return nil, io.EOF
		}
		ev, err := sse.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, streamReadError("openai", io.ErrUnexpectedEOF)
			}
			return nil, streamReadError("openai", err)
		}
		data := bytes.TrimSpace(ev.Data)
		if string(data) == "[DONE]" {
			done = true
			if finish == "" && usage == nil {
				return nil, io.EOF
			}
			return []api.Chunk{{FinishReason: finish, Usage: usage}}, io.EOF
		}
		// Reuse the decoded value's slices between events (fewer allocations per token).
		// The elements are zeroed: json.Unmarshal leaves fields an event omits untouched.
		clear(c.Choices[:cap(c.Choices)])
		c = openai.Chunk{Choices: c.Choices[:0]}
		if !decodeOpenAIChunkFast(data, &c) {
			clear(c.Choices[:cap(c.Choices)])
			c = openai.Chunk{Choices: c.Choices[:0]}
			if err := json.Unmarshal(data, &c); err != nil {
				return nil, malformed("openai", data, err)
			}
		}
		if c.Error != nil {
			return nil, upstreamError("openai", CodeProviderError, c.Error.Type == "server_error", c.Error.Message)
		}
		out := chunks[:0]
		defer func() { chunks = out }()
		for _, ch := range c.Choices {
			if ch.Index != 0 {
				continue
			}
			if ch.Delta.Content != "" {
				out = append(out, api.Chunk{Text: ch.Delta.Content})
			}
			if ch.Delta.Refusal != "" {
				out = append(out, api.Chunk{Refusal: ch.Delta.Refusal})
			}
			for _, tc := range ch.Delta.ToolCalls {
				idx := 0
				if tc.Index != nil {
					idx = *tc.Index
				}
				out = append(out, api.Chunk{ToolCall: &api.ToolCallDelta{Index: idx, ID: tc.ID,
					Name: tc.Function.Name, Arguments: tc.Function.Arguments}})
			}
			if ch.FinishReason != nil && *ch.FinishReason != "" {
				finish = openAIFinish(*ch.FinishReason)
			}
		}
		if c.Usage != nil {
			usage = &api.Usage{InputTokens: c.Usage.PromptTokens, OutputTokens: c.Usage.CompletionTokens}
		}
		return out, nil
	}
	return &chunkStream{body: body, decode: decode, reader: sse.r}
}

func openAIFinish(s string) api.FinishReason {
	switch s {
	case "length":
		return api.FinishLength
	case "tool_calls", "function_call":
		return api.FinishToolCalls
	case "content_filter":
		return api.FinishContentFilter
	default:
		return api.FinishStop
	}
}

// baseURL is the configured base URL without a trailing slash, or def when none is set.
func (c HTTPConfig) baseURL(def string) string {
	if base := strings.TrimRight(c.BaseURL, "/"); base != "" {
		return base
	}
	return def
}
