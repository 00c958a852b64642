package provider

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	api "github.com/mxp-mesh/mesh/pkg/api/inference"
)

// Anthropic Messages API constants.
const (
	DefaultAnthropicBaseURL = "https://api.anthropic.com"
	AnthropicVersion        = "2023-06-01"
	// AnthropicDefaultMaxTokens is sent when the request sets none (the API requires it).
	AnthropicDefaultMaxTokens = 4096
)

// Anthropic speaks the Messages API, always streamed (SSE) upstream.
type Anthropic struct {
	cfg  HTTPConfig
	base string
}

// NewAnthropic returns an Anthropic adapter.
func NewAnthropic(cfg HTTPConfig) *Anthropic {
	cfg.registerKey()
	return &Anthropic{cfg: cfg, base: cfg.baseURL(DefaultAnthropicBaseURL)}
}

// Name implements ModelAdapter.
func (a *Anthropic) Name() string { return "anthropic" }

type anBlock struct {
	Type      string          `json:"type"`
	Text      string          `json:"text,omitempty"`
	ID        string          `json:"id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Input     json.RawMessage `json:"input,omitempty"`
	ToolUseID string          `json:"tool_use_id,omitempty"`
	Content   string          `json:"content,omitempty"`
}

type anMessage struct {
	Role    string    `json:"role"`
	Content []anBlock `json:"content"`
}

type anTool struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema"`
}

type anRequest struct {
	Model         string      `json:"model"`
	System        string      `json:"system,omitempty"`
	Messages      []anMessage `json:"messages"`
	MaxTokens     int         `json:"max_tokens"`
	Temperature   *float64    `json:"temperature,omitempty"`
	TopP          *float64    `json:"top_p,omitempty"`
	StopSequences []string    `json:"stop_sequences,omitempty"`
	Tools         []anTool    `json:"tools,omitempty"`
	ToolChoice    any         `json:"tool_choice,omitempty"`
	Stream        bool        `json:"stream"`
}

// BuildAnthropicRequest maps a Request to a Messages API body: the system prompt goes in
// the top-level "system" field, tool results become user tool_result blocks, and
// consecutive messages of one role are merged (the API requires alternation).
func BuildAnthropicRequest(req *api.Request) (any, error) {
	out := anRequest{Model: req.Model, System: systemPrompt(req), MaxTokens: req.MaxTokens,
		Temperature: req.Temperature, TopP: req.TopP, StopSequences: req.Stop, Stream: true}
	if out.MaxTokens <= 0 {
		out.MaxTokens = AnthropicDefaultMaxTokens
	}
	if rf := req.ResponseFormat; rf != nil && rf.Type != api.FormatText && rf.Type != "" {
		// The Messages API has no response_format; ask for it in the system prompt.
		hint := "Respond with a single JSON object and nothing else."
		if rf.Type == api.FormatJSONSchema && len(rf.Schema) > 0 {
			hint = "Respond with a single JSON object matching this JSON Schema and nothing else: " + string(rf.Schema)
		}
		if out.System != "" {
			out.System += "\n\n"
		}
		out.System += hint
	}
	for _, m := range req.Messages {
		var role string
		var blocks []anBlock
		switch m.Role {
		case api.RoleSystem:
			continue
		case api.RoleUser:
			role = "user"
			blocks = append(blocks, anBlock{Type: "text", Text: m.Content})
		case api.RoleAssistant:
			role = "assistant"
			if m.Content != "" {
				blocks = append(blocks, anBlock{Type: "text", Text: m.Content})
			}
			for _, tc := range m.ToolCalls {
				input, err := argsObject(tc.Arguments)
				if err != nil {
					return nil, &Error{Code: CodeInvalidRequest, Message: err.Error()}
				}
				blocks = append(blocks, anBlock{Type: "tool_use", ID: tc.ID, Name: tc.Name, Input: input})
			}
		case api.RoleTool:
			role = "user"
			blocks = append(blocks, anBlock{Type: "tool_result", ToolUseID: m.ToolCallID, Content: m.Content})
		default:
			return nil, Errorf(CodeInvalidRequest, "unknown role %q", m.Role)
		}
		if len(blocks) == 0 {
			continue
		}
		if n := len(out.Messages); n > 0 && out.Messages[n-1].Role == role {
			out.Messages[n-1].Content = append(out.Messages[n-1].Content, blocks...)
			continue
		}
		out.Messages = append(out.Messages, anMessage{Role: role, Content: blocks})
	}
	for _, t := range req.Tools {
		schema := t.Parameters
		if len(schema) == 0 {
			schema = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		out.Tools = append(out.Tools, anTool{Name: t.Name, Description: t.Description, InputSchema: schema})
	}
	if tc := req.ToolChoice; tc != nil {
		switch tc.Mode {
		case api.ToolChoiceAuto:
			out.ToolChoice = map[string]string{"type": "auto"}
		case api.ToolChoiceNone:
			out.ToolChoice = map[string]string{"type": "none"}
		case api.ToolChoiceRequired:
			out.ToolChoice = map[string]string{"type": "any"}
		case api.ToolChoiceTool:
			out.ToolChoice = map[string]string{"type": "tool", "name": tc.Name}
		default:
			return nil, Errorf(CodeInvalidRequest, "unknown tool choice %q", tc.Mode)
		}
	}
	return out, nil
}

// Stream implements ModelAdapter.
func (a *Anthropic) Stream(ctx context.Context, req *api.Request) (api.Stream, error) {
	body, err := BuildAnthropicRequest(req)
	if err != nil {
		return nil, err
	}
	h := http.Header{"Accept": {"text/event-stream"}, "Anthropic-Version": {AnthropicVersion}}
	if a.cfg.APIKey != "" {
		h.Set("X-Api-Key", a.cfg.APIKey)
	}
	resp, err := httpPost(ctx, a.cfg.client(), a.Name(), a.base+"/v1/messages", h, body, anthropicErrorMessage)
	if err != nil {
		return nil, err
	}
	return NewAnthropicStream(resp.Body), nil
}

func anthropicErrorMessage(data []byte) string {
	var e struct {
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &e) != nil {
		return ""
	}
	return e.Error.Message
}

type anEvent struct {
	Type    string `json:"type"`
	Index   int    `json:"index"`
	Message *struct {
		Usage struct {
			InputTokens  int `json:"input_tokens"`
			OutputTokens int `json:"output_tokens"`
		} `json:"usage"`
	} `json:"message"`
	ContentBlock *anBlock `json:"content_block"`
	Delta        *anDelta `json:"delta"`
	Usage        *struct {
		InputTokens  int `json:"input_tokens"`
		OutputTokens int `json:"output_tokens"`
	} `json:"usage"`
	Error *struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

type anDelta struct {
	Type        string `json:"type"`
	Text        string `json:"text"`
	PartialJSON string `json:"partial_json"`
	StopReason  string `json:"stop_reason"`
}

// NewAnthropicStream decodes a Messages API SSE body: message_start, content_block_start,
// content_block_delta (text_delta, input_json_delta), content_block_stop, message_delta,
// message_stop, ping and error events.
func NewAnthropicStream(body io.ReadCloser) api.Stream {
	sse := newSSEReader(body)
	var usage api.Usage
	toolIndex := map[int]int{} // content block index -> tool call index
	done := false
	one := make([]api.Chunk, 1) // reused for the per-token deltas (see chunkStream)
	decode := func() ([]api.Chunk, error) {
		if done {
			return nil, io.EOF
		}
		ev, err := sse.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, streamReadError("anthropic", err)
		}
		var e anEvent
		if !decodeAnthropicEventFast(ev.Data, &e) {
			e = anEvent{}
			if err := json.Unmarshal(ev.Data, &e); err != nil {
				return nil, malformed("anthropic", ev.Data, err)
			}
		}
		if e.Type == "" {
			e.Type = ev.Event
		}
		switch e.Type {
		case "message_start":
			if e.Message != nil {
				usage.InputTokens = e.Message.Usage.InputTokens
				usage.OutputTokens = e.Message.Usage.OutputTokens
			}
		case "content_block_start":
			if b := e.ContentBlock; b != nil && b.Type == "tool_use" {
				i := len(toolIndex)
				toolIndex[e.Index] = i
				return []api.Chunk{{ToolCall: &api.ToolCallDelta{Index: i, ID: b.ID, Name: b.Name}}}, nil
			}
			if b := e.ContentBlock; b != nil && b.Type == "text" && b.Text != "" {
				return []api.Chunk{{Text: b.Text}}, nil
			}
		case "content_block_delta":
			if e.Delta == nil {
				return nil, malformed("anthropic", ev.Data, errors.New("content_block_delta without delta"))
			}
			switch e.Delta.Type {
			case "text_delta":
				one[0] = api.Chunk{Text: e.Delta.Text}
				return one, nil
			case "input_json_delta":
				i, ok := toolIndex[e.Index]
				if !ok {
					return nil, malformed("anthropic", ev.Data, errors.New("input_json_delta for a block that is not tool_use"))
				}
				one[0] = api.Chunk{ToolCall: &api.ToolCallDelta{Index: i, Arguments: e.Delta.PartialJSON}}
				return one, nil
			}
		case "message_delta":
			if e.Usage != nil {
				usage.OutputTokens = e.Usage.OutputTokens
				if e.Usage.InputTokens > 0 {
					usage.InputTokens = e.Usage.InputTokens
				}
			}
			if e.Delta != nil && e.Delta.StopReason != "" {
				u := usage
				c := api.Chunk{FinishReason: anthropicFinish(e.Delta.StopReason), Usage: &u}
				if c.FinishReason == api.FinishRefusal {
					c.Refusal = "the model declined to answer (stop_reason refusal)"
				}
				return []api.Chunk{c}, nil
			}
		case "message_stop":
			done = true
			return nil, io.EOF
		case "error":
			msg, typ := "stream error", ""
			if e.Error != nil {
				msg, typ = e.Error.Message, e.Error.Type
			}
			code, retry := CodeProviderError, true
			switch typ {
			case "overloaded_error":
				code = CodeOverloaded
			case "rate_limit_error":
				code = CodeRateLimited
			case "invalid_request_error":
				code, retry = CodeInvalidRequest, false
			}
			return nil, upstreamError("anthropic", code, retry, msg)
		}
		return nil, nil // ping, content_block_stop and unknown events carry nothing
	}
	return &chunkStream{body: body, decode: decode, reader: sse.r}
}

func anthropicFinish(s string) api.FinishReason {
	switch s {
	case "max_tokens", "model_context_window_exceeded":
		return api.FinishLength
	case "tool_use":
		return api.FinishToolCalls
	case "refusal":
		return api.FinishRefusal
	default:
		return api.FinishStop
	}
}
