package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	api "github.com/mxp-mesh/mesh/pkg/api/inference"
	"github.com/mxp-mesh/mesh/services/inference/internal/openai"
)

// DefaultOllamaHost is used when the config has no BaseURL.
const DefaultOllamaHost = "http://127.0.0.1:11434"

// Ollama speaks Ollama's /api/chat with NDJSON streaming.
type Ollama struct {
	cfg  HTTPConfig
	base string
}

// NewOllama returns an Ollama adapter. BaseURL may be an OLLAMA_HOST value ("host:port"
// without a scheme is taken as http).
func NewOllama(cfg HTTPConfig) *Ollama {
	cfg.registerKey()
	return &Ollama{cfg: cfg, base: OllamaBaseURL(cfg.BaseURL)}
}

// OllamaBaseURL normalises an OLLAMA_HOST value to a base URL.
func OllamaBaseURL(host string) string {
	host = strings.TrimRight(strings.TrimSpace(host), "/")
	if host == "" {
		return DefaultOllamaHost
	}
	if !strings.Contains(host, "://") {
		host = "http://" + host
	}
	return host
}

// Name implements ModelAdapter.
func (o *Ollama) Name() string { return "ollama" }

type olToolCall struct {
	ID       string `json:"id,omitempty"`
	Function struct {
		Index     *int            `json:"index,omitempty"`
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	} `json:"function"`
}

type olMessage struct {
	Role      string       `json:"role"`
	Content   string       `json:"content"`
	ToolCalls []olToolCall `json:"tool_calls,omitempty"`
	ToolName  string       `json:"tool_name,omitempty"`
}

type olRequest struct {
	Model    string          `json:"model"`
	Messages []olMessage     `json:"messages"`
	Tools    []openai.Tool   `json:"tools,omitempty"`
	Format   json.RawMessage `json:"format,omitempty"`
	Options  map[string]any  `json:"options,omitempty"`
	Stream   bool            `json:"stream"`
}

// BuildOllamaRequest maps a Request to an /api/chat body: the system prompt is the first
// message with role "system", tool arguments are objects, tool results name their tool.
// Ollama has no tool_choice; "none" drops the tools, other modes are left to the model.
func BuildOllamaRequest(req *api.Request) (any, error) {
	out := olRequest{Model: req.Model, Stream: true}
	if sys := systemPrompt(req); sys != "" {
		out.Messages = append(out.Messages, olMessage{Role: "system", Content: sys})
	}
	names := toolNames(req.Messages)
	for _, m := range req.Messages {
		om := olMessage{Role: string(m.Role), Content: m.Content}
		switch m.Role {
		case api.RoleSystem:
			continue
		case api.RoleUser:
		case api.RoleAssistant:
			for _, tc := range m.ToolCalls {
				args, err := argsObject(tc.Arguments)
				if err != nil {
					return nil, &Error{Code: CodeInvalidRequest, Message: err.Error()}
				}
				var c olToolCall
				c.ID, c.Function.Name, c.Function.Arguments = tc.ID, tc.Name, args
				om.ToolCalls = append(om.ToolCalls, c)
			}
		case api.RoleTool:
			om.ToolName = m.Name
			if om.ToolName == "" {
				om.ToolName = names[m.ToolCallID]
			}
		default:
			return nil, Errorf(CodeInvalidRequest, "unknown role %q", m.Role)
		}
		out.Messages = append(out.Messages, om)
	}
	if req.ToolChoice == nil || req.ToolChoice.Mode != api.ToolChoiceNone {
		for _, t := range req.Tools {
			var ot openai.Tool
			ot.Type = "function"
			ot.Function.Name, ot.Function.Description, ot.Function.Parameters = t.Name, t.Description, t.Parameters
			out.Tools = append(out.Tools, ot)
		}
	}
	if rf := req.ResponseFormat; rf != nil {
		switch rf.Type {
		case api.FormatJSONObject:
			out.Format = json.RawMessage(`"json"`)
		case api.FormatJSONSchema:
			out.Format = rf.Schema
		}
	}
	opts := map[string]any{}
	if req.Temperature != nil {
		opts["temperature"] = *req.Temperature
	}
	if req.TopP != nil {
		opts["top_p"] = *req.TopP
	}
	if req.MaxTokens > 0 {
		opts["num_predict"] = req.MaxTokens
	}
	if len(req.Stop) > 0 {
		opts["stop"] = req.Stop
	}
	if len(opts) > 0 {
		out.Options = opts
	}
	return out, nil
}

// Stream implements ModelAdapter.
func (o *Ollama) Stream(ctx context.Context, req *api.Request) (api.Stream, error) {
	body, err := BuildOllamaRequest(req)
	if err != nil {
		return nil, err
	}
	h := http.Header{"Accept": {"application/x-ndjson"}}
	if o.cfg.APIKey != "" {
		h.Set("Authorization", "Bearer "+o.cfg.APIKey)
	}
	resp, err := httpPost(ctx, o.cfg.client(), o.Name(), o.base+"/api/chat", h, body, ollamaErrorMessage)
	if err != nil {
		return nil, err
	}
	return NewOllamaStream(resp.Body), nil
}

func ollamaErrorMessage(data []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(data, &e) != nil {
		return ""
	}
	return e.Error
}

type olChunk struct {
	Message         *olReply `json:"message"`
	Done            bool     `json:"done"`
	DoneReason      string   `json:"done_reason"`
	PromptEvalCount int      `json:"prompt_eval_count"`
	EvalCount       int      `json:"eval_count"`
	Error           string   `json:"error"`
}

// olReply is the message of a reply line (role and the rest are not needed).
type olReply struct {
	Content   string       `json:"content"`
	ToolCalls []olToolCall `json:"tool_calls"`
}

// NewOllamaStream decodes an /api/chat NDJSON body: one object per line, the last with
// "done": true and the token counts.
func NewOllamaStream(body io.ReadCloser) api.Stream {
	r := newBodyReader(body)
	calls := 0
	done := false
	var chunks []api.Chunk // reused: chunkStream takes an event's chunks out before decoding the next
	decode := func() ([]api.Chunk, error) {
		if done {
			return nil, io.EOF
		}
		line, err := readLine(r)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, streamReadError("ollama", err)
		}
		if len(bytes.TrimSpace(line)) == 0 {
			return nil, nil
		}
		var c olChunk
		if !decodeOllamaChunkFast(line, &c) {
			c = olChunk{}
			if err := json.Unmarshal(line, &c); err != nil {
				return nil, malformed("ollama", line, err)
			}
		}
		if c.Error != "" {
			return nil, upstreamError("ollama", CodeProviderError, true, c.Error)
		}
		out := chunks[:0]
		defer func() { chunks = out }()
		if m := c.Message; m != nil {
			if m.Content != "" {
				out = append(out, api.Chunk{Text: m.Content})
			}
			for _, tc := range m.ToolCalls {
				id := tc.ID
				if id == "" {
					id = fmt.Sprintf("call_%d", calls)
				}
				args := string(tc.Function.Arguments)
				if args == "" || args == "null" {
					args = "{}"
				}
				out = append(out, api.Chunk{ToolCall: &api.ToolCallDelta{Index: calls, ID: id, Name: tc.Function.Name, Arguments: args}})
				calls++
			}
		}
		if c.Done {
			done = true
			finish := api.FinishStop
			switch {
			case c.DoneReason == "length":
				finish = api.FinishLength
			case calls > 0:
				finish = api.FinishToolCalls
			}
			out = append(out, api.Chunk{FinishReason: finish,
				Usage: &api.Usage{InputTokens: c.PromptEvalCount, OutputTokens: c.EvalCount}})
			return out, io.EOF
		}
		return out, nil
	}
	return &chunkStream{body: body, decode: decode, reader: r}
}
