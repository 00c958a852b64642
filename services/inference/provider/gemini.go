package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	api "github.com/mxp-mesh/mesh/pkg/api/inference"
	"github.com/mxp-mesh/mesh/pkg/common/security"
)

// DefaultGeminiBaseURL is used when the config has no BaseURL.
const DefaultGeminiBaseURL = "https://generativelanguage.googleapis.com"

// Gemini speaks the Generative Language API (streamGenerateContent?alt=sse). The API key
// goes in the x-goog-api-key header, never in the URL.
type Gemini struct {
	cfg  HTTPConfig
	base string
}

// NewGemini returns a Gemini adapter.
func NewGemini(cfg HTTPConfig) *Gemini {
	cfg.registerKey()
	return &Gemini{cfg: cfg, base: cfg.baseURL(DefaultGeminiBaseURL)}
}

// Name implements ModelAdapter.
func (g *Gemini) Name() string { return "gemini" }

type gmPart struct {
	Text             string          `json:"text,omitempty"`
	FunctionCall     *gmFunctionCall `json:"functionCall,omitempty"`
	FunctionResponse *gmFunctionResp `json:"functionResponse,omitempty"`
	Thought          bool            `json:"thought,omitempty"`
}

type gmFunctionCall struct {
	ID   string          `json:"id,omitempty"`
	Name string          `json:"name"`
	Args json.RawMessage `json:"args,omitempty"`
}

type gmFunctionResp struct {
	ID       string          `json:"id,omitempty"`
	Name     string          `json:"name"`
	Response json.RawMessage `json:"response"`
}

type gmContent struct {
	Role  string   `json:"role,omitempty"`
	Parts []gmPart `json:"parts"`
}

type gmRequest struct {
	Contents          []gmContent `json:"contents"`
	SystemInstruction *gmContent  `json:"systemInstruction,omitempty"`
	Tools             []struct {
		FunctionDeclarations []gmFunctionDecl `json:"functionDeclarations"`
	} `json:"tools,omitempty"`
	ToolConfig       any            `json:"toolConfig,omitempty"`
	GenerationConfig map[string]any `json:"generationConfig,omitempty"`
}

type gmFunctionDecl struct {
	Name        string         `json:"name"`
	Description string         `json:"description,omitempty"`
	Parameters  map[string]any `json:"parameters,omitempty"`
}

// BuildGeminiRequest maps a Request to a generateContent body: the system prompt goes in
// systemInstruction, assistant turns are role "model", tool calls are functionCall parts
// and tool results functionResponse parts (named from the call they answer), and tool
// schemas are reduced to the OpenAPI subset Gemini accepts.
func BuildGeminiRequest(req *api.Request) (any, error) {
	var out gmRequest
	if sys := systemPrompt(req); sys != "" {
		out.SystemInstruction = &gmContent{Parts: []gmPart{{Text: sys}}}
	}
	names := toolNames(req.Messages)
	for _, m := range req.Messages {
		var role string
		var parts []gmPart
		switch m.Role {
		case api.RoleSystem:
			continue
		case api.RoleUser:
			role = "user"
			parts = append(parts, gmPart{Text: m.Content})
		case api.RoleAssistant:
			role = "model"
			if m.Content != "" {
				parts = append(parts, gmPart{Text: m.Content})
			}
			for _, tc := range m.ToolCalls {
				args, err := argsObject(tc.Arguments)
				if err != nil {
					return nil, &Error{Code: CodeInvalidRequest, Message: err.Error()}
				}
				parts = append(parts, gmPart{FunctionCall: &gmFunctionCall{ID: tc.ID, Name: tc.Name, Args: args}})
			}
		case api.RoleTool:
			role = "user"
			name := m.Name
			if name == "" {
				name = names[m.ToolCallID]
			}
			if name == "" {
				return nil, Errorf(CodeInvalidRequest, "tool result %q answers no known tool call", m.ToolCallID)
			}
			parts = append(parts, gmPart{FunctionResponse: &gmFunctionResp{ID: m.ToolCallID, Name: name,
				Response: toolResultObject(m.Content)}})
		default:
			return nil, Errorf(CodeInvalidRequest, "unknown role %q", m.Role)
		}
		if len(parts) == 0 {
			continue
		}
		if n := len(out.Contents); n > 0 && out.Contents[n-1].Role == role {
			out.Contents[n-1].Parts = append(out.Contents[n-1].Parts, parts...)
			continue
		}
		out.Contents = append(out.Contents, gmContent{Role: role, Parts: parts})
	}
	if len(req.Tools) > 0 {
		decls := make([]gmFunctionDecl, 0, len(req.Tools))
		for _, t := range req.Tools {
			d := gmFunctionDecl{Name: t.Name, Description: t.Description}
			if len(t.Parameters) > 0 {
				var schema map[string]any
				if err := json.Unmarshal(t.Parameters, &schema); err != nil {
					return nil, Errorf(CodeInvalidRequest, "tool %q: parameters are not a JSON object: %v", t.Name, err)
				}
				d.Parameters = GeminiSchema(schema)
			}
			decls = append(decls, d)
		}
		out.Tools = append(out.Tools, struct {
			FunctionDeclarations []gmFunctionDecl `json:"functionDeclarations"`
		}{decls})
	}
	if tc := req.ToolChoice; tc != nil {
		cfg := map[string]any{}
		switch tc.Mode {
		case api.ToolChoiceAuto:
			cfg["mode"] = "AUTO"
		case api.ToolChoiceNone:
			cfg["mode"] = "NONE"
		case api.ToolChoiceRequired:
			cfg["mode"] = "ANY"
		case api.ToolChoiceTool:
			cfg["mode"] = "ANY"
			cfg["allowedFunctionNames"] = []string{tc.Name}
		default:
			return nil, Errorf(CodeInvalidRequest, "unknown tool choice %q", tc.Mode)
		}
		out.ToolConfig = map[string]any{"functionCallingConfig": cfg}
	}
	gc := map[string]any{}
	if req.Temperature != nil {
		gc["temperature"] = *req.Temperature
	}
	if req.TopP != nil {
		gc["topP"] = *req.TopP
	}
	if req.MaxTokens > 0 {
		gc["maxOutputTokens"] = req.MaxTokens
	}
	if len(req.Stop) > 0 {
		gc["stopSequences"] = req.Stop
	}
	if rf := req.ResponseFormat; rf != nil && (rf.Type == api.FormatJSONObject || rf.Type == api.FormatJSONSchema) {
		gc["responseMimeType"] = "application/json"
		if rf.Type == api.FormatJSONSchema && len(rf.Schema) > 0 {
			var schema map[string]any
			if err := json.Unmarshal(rf.Schema, &schema); err != nil {
				return nil, Errorf(CodeInvalidRequest, "response schema is not a JSON object: %v", err)
			}
			gc["responseSchema"] = GeminiSchema(schema)
		}
	}
	if len(gc) > 0 {
		out.GenerationConfig = gc
	}
	return out, nil
}

// toolResultObject wraps a tool result for functionResponse.response, which must be an
// object: a JSON object is passed as is, anything else as {"content": text}.
func toolResultObject(content string) json.RawMessage {
	var obj map[string]json.RawMessage
	if json.Unmarshal([]byte(content), &obj) == nil && obj != nil {
		return json.RawMessage(content)
	}
	b, _ := json.Marshal(map[string]string{"content": content})
	return b
}

// geminiSchemaKeys are the JSON Schema keywords Gemini's OpenAPI-subset Schema accepts.
var geminiSchemaKeys = map[string]bool{
	"type": true, "format": true, "title": true, "description": true, "nullable": true,
	"enum": true, "items": true, "minItems": true, "maxItems": true, "properties": true,
	"required": true, "minProperties": true, "maxProperties": true, "minLength": true,
	"maxLength": true, "pattern": true, "minimum": true, "maximum": true, "anyOf": true,
	"propertyOrdering": true, "default": true, "example": true,
}

// GeminiSchema reduces a JSON Schema to what Gemini accepts: unsupported keywords
// ($schema, additionalProperties, $ref, ...) are dropped, "const" becomes a one-value
// enum, "oneOf" becomes "anyOf", a type list with "null" becomes nullable, and enum
// values become strings.
func GeminiSchema(s map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range s {
		switch k {
		case "const":
			out["enum"] = []any{fmt.Sprint(v)}
			continue
		case "oneOf":
			k = "anyOf"
		}
		if !geminiSchemaKeys[k] {
			continue
		}
		switch k {
		case "type":
			if list, ok := v.([]any); ok {
				var t any
				for _, x := range list {
					if x == "null" {
						out["nullable"] = true
					} else if t == nil {
						t = x
					}
				}
				if t != nil {
					out["type"] = t
				}
				continue
			}
		case "properties":
			if props, ok := v.(map[string]any); ok {
				np := make(map[string]any, len(props))
				for name, p := range props {
					if pm, ok := p.(map[string]any); ok {
						np[name] = GeminiSchema(pm)
					}
				}
				v = np
			}
		case "items":
			if im, ok := v.(map[string]any); ok {
				v = GeminiSchema(im)
			}
		case "anyOf":
			if list, ok := v.([]any); ok {
				nl := make([]any, 0, len(list))
				for _, x := range list {
					if xm, ok := x.(map[string]any); ok {
						nl = append(nl, GeminiSchema(xm))
					}
				}
				v = nl
			}
		case "enum":
			if list, ok := v.([]any); ok {
				nl := make([]any, 0, len(list))
				for _, x := range list {
					if x != nil {
						nl = append(nl, fmt.Sprint(x))
					}
				}
				v = nl
			}
		}
		out[k] = v
	}
	return out
}

// Stream implements ModelAdapter.
func (g *Gemini) Stream(ctx context.Context, req *api.Request) (api.Stream, error) {
	body, err := BuildGeminiRequest(req)
	if err != nil {
		return nil, err
	}
	h := http.Header{"Accept": {"text/event-stream"}}
	if g.cfg.APIKey != "" {
		h.Set("X-Goog-Api-Key", g.cfg.APIKey)
	}
	u := g.base + "/v1beta/models/" + url.PathEscape(req.Model) + ":streamGenerateContent?alt=sse"
	resp, err := httpPost(ctx, g.cfg.client(), g.Name(), u, h, body, geminiErrorMessage)
	if err != nil {
		return nil, err
	}
	return NewGeminiStream(resp.Body), nil
}

func geminiErrorMessage(data []byte) string {
	var e struct {
		Error struct {
			Message string `json:"message"`
			Status  string `json:"status"`
		} `json:"error"`
	}
	// Errors may come as an object or as a one-element array.
	if json.Unmarshal(data, &e) != nil {
		var arr []struct {
			Error struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(data, &arr) != nil || len(arr) == 0 {
			return ""
		}
		return arr[0].Error.Message
	}
	return e.Error.Message
}

type gmChunk struct {
	Candidates     []gmCandidate `json:"candidates"`
	PromptFeedback *struct {
		BlockReason string `json:"blockReason"`
	} `json:"promptFeedback"`
	UsageMetadata *gmUsage `json:"usageMetadata"`
	Error         *struct {
		Message string `json:"message"`
		Status  string `json:"status"`
	} `json:"error"`
}

type gmCandidate struct {
	Content      gmContent `json:"content"`
	FinishReason string    `json:"finishReason"`
}

type gmUsage struct {
	PromptTokenCount     int `json:"promptTokenCount"`
	CandidatesTokenCount int `json:"candidatesTokenCount"`
	ThoughtsTokenCount   int `json:"thoughtsTokenCount"`
}

// NewGeminiStream decodes a streamGenerateContent?alt=sse body (one
// GenerateContentResponse per event; the stream ends when the connection closes).
// Function calls arrive whole; ids are kept when Gemini sends them and made up
// ("call_<n>") when it does not. Prompt and response safety blocks are reported as
// finish reason content_filter.
func NewGeminiStream(body io.ReadCloser) api.Stream {
	sse := newSSEReader(body)
	var usage *api.Usage
	var finish api.FinishReason
	calls := 0
	done := false
	var chunks []api.Chunk // reused: chunkStream takes an event's chunks out before decoding the next
	decode := func() ([]api.Chunk, error) {
		if done {
			return nil, io.EOF
		}
		ev, err := sse.Next()
		if errors.Is(err, io.EOF) {
			done = true
			if finish == "" {
				return nil, streamReadError("gemini", io.ErrUnexpectedEOF)
			}
			return []api.Chunk{{FinishReason: finish, Usage: usage}}, io.EOF
		}
		if err != nil {
			return nil, streamReadError("gemini", err)
		}
		var c gmChunk
		if !decodeGeminiChunkFast(ev.Data, &c) {
			c = gmChunk{}
			if err := json.Unmarshal(ev.Data, &c); err != nil {
				return nil, malformed("gemini", ev.Data, err)
			}
		}
		if c.Error != nil {
			return nil, upstreamError("gemini", CodeProviderError, true, c.Error.Message)
		}
		if u := c.UsageMetadata; u != nil {
			usage = &api.Usage{InputTokens: u.PromptTokenCount, OutputTokens: u.CandidatesTokenCount + u.ThoughtsTokenCount}
		}
		out := chunks[:0]
		defer func() { chunks = out }()
		if pf := c.PromptFeedback; pf != nil && pf.BlockReason != "" {
			finish = api.FinishContentFilter
			out = append(out, api.Chunk{Refusal: "prompt blocked by Gemini safety filters: " +
				security.Excerpt(pf.BlockReason, MaxUpstreamExcerpt)})
		}
		if len(c.Candidates) > 0 {
			cand := c.Candidates[0]
			for _, p := range cand.Content.Parts {
				switch {
				case p.Thought:
				case p.FunctionCall != nil:
					id := p.FunctionCall.ID
					if id == "" {
						id = fmt.Sprintf("call_%d", calls)
					}
					args := string(p.FunctionCall.Args)
					if args == "" || args == "null" {
						args = "{}"
					}
					out = append(out, api.Chunk{ToolCall: &api.ToolCallDelta{Index: calls, ID: id,
						Name: p.FunctionCall.Name, Arguments: args}})
					calls++
				case p.Text != "":
					out = append(out, api.Chunk{Text: p.Text})
				}
			}
			if cand.FinishReason != "" {
				finish = geminiFinish(cand.FinishReason)
				if finish == api.FinishStop && calls > 0 {
					finish = api.FinishToolCalls
				}
				if finish == api.FinishContentFilter {
					out = append(out, api.Chunk{Refusal: "response blocked by Gemini: " + cand.FinishReason})
				}
			}
		}
		return out, nil
	}
	return &chunkStream{body: body, decode: decode, reader: sse.r}
}

func geminiFinish(s string) api.FinishReason {
	switch s {
	case "MAX_TOKENS":
		return api.FinishLength
	case "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "LANGUAGE":
		return api.FinishContentFilter
	default:
		return api.FinishStop
	}
}
