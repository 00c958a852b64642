package inference

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	api "github.com/mxp-mesh/mesh/pkg/api/inference"
	cmetrics "github.com/mxp-mesh/mesh/pkg/common/metrics"
	"github.com/mxp-mesh/mesh/pkg/mxp"
	"github.com/mxp-mesh/mesh/services/inference/internal/openai"
	"github.com/mxp-mesh/mesh/services/inference/provider"
)

// Routes mounts the OpenAI-compatible API on r: POST /v1/chat/completions (streamed and
// not, tools included) and GET /v1/models; and GET /readyz/inference, the readiness
// detail (enabled providers, every breaker's state; 503 when not ready). Existing OpenAI client libraries work with
// base URL http://HOST:PORT/v1. The caller's Authorization header is checked against
// Config.ClientKeys (when set) and never forwarded upstream.
func (s *Service) Routes(r chi.Router) {
	r.Post("/v1/chat/completions", s.handleChatCompletions)
	r.Get("/v1/models", s.handleModels)
	r.Get("/readyz/inference", s.handleReady)
	// Every other /v1 path (the routes above, and other services' on a shared router such
	// as mxp dev's /v1/agents, are more specific and win) answers as OpenAI does: a 404
	// with an error body, which OpenAI clients parse, instead of a plain-text 404 they
	// report as a malformed response.
	r.HandleFunc("/v1/*", s.handleUnknownV1)
}

// handleUnknownV1 answers a path of the OpenAI API that the mesh does not serve: code
// unknown_url (mxp.CodeUnknownURL, 404), counted in mxp_inference_rejected_total{api="http"}
// like every refused request.
func (s *Service) handleUnknownV1(w http.ResponseWriter, r *http.Request) {
	s.m.rejected.WithLabelValues("http", string(mxp.CodeUnknownURL)).Inc()
	var out openai.ErrorBody
	out.Error.Type = "invalid_request_error"
	out.Error.Code = string(mxp.CodeUnknownURL)
	out.Error.Message = fmt.Sprintf("the mesh does not serve %s %s; its OpenAI-compatible API serves POST /v1/chat/completions and GET /v1/models",
		r.Method, r.URL.Path)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(mxp.CodeUnknownURL.HTTPStatus())
	json.NewEncoder(w).Encode(out)
}

func (s *Service) handleReady(w http.ResponseWriter, _ *http.Request) {
	rd := s.Ready()
	w.Header().Set("Content-Type", "application/json")
	if !rd.Ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(rd)
}

// Handler returns a router serving only the OpenAI-compatible API.
func (s *Service) Handler() http.Handler {
	r := chi.NewRouter()
	s.Routes(r)
	return r
}

type oaiMessage struct {
	Role       string            `json:"role"`
	Content    json.RawMessage   `json:"content"`
	Name       string            `json:"name,omitempty"`
	ToolCalls  []openai.ToolCall `json:"tool_calls,omitempty"`
	ToolCallID string            `json:"tool_call_id,omitempty"`
}

type oaiRequest struct {
	Model               string          `json:"model"`
	Messages            []oaiMessage    `json:"messages"`
	Temperature         *float64        `json:"temperature"`
	TopP                *float64        `json:"top_p"`
	MaxTokens           int             `json:"max_tokens"`
	MaxCompletionTokens int             `json:"max_completion_tokens"`
	Stop                json.RawMessage `json:"stop"`
	Stream              bool            `json:"stream"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	Tools          []openai.Tool   `json:"tools"`
	ToolChoice     json.RawMessage `json:"tool_choice"`
	ResponseFormat *struct {
		Type       string `json:"type"`
		JSONSchema *struct {
			Name   string          `json:"name"`
			Schema json.RawMessage `json:"schema"`
		} `json:"json_schema"`
	} `json:"response_format"`
	N *int `json:"n"`
	// MXP extensions.
	ContextBudget       string `json:"mxp_context_budget"`
	TimeoutMs           int64  `json:"mxp_timeout_ms"`
	FirstTokenTimeoutMs int64  `json:"mxp_first_token_timeout_ms"`
}

// ParseOpenAIRequest maps a Chat Completions request body to a ChatRequest and says
// whether the caller asked for a stream (and usage in it).
func ParseOpenAIRequest(body []byte) (req *ChatRequest, stream, includeUsage bool, err error) {
	if req, stream, includeUsage, ok := parseOpenAIRequestFast(body); ok {
		return req, stream, includeUsage, nil
	}
	return parseOpenAIRequest(body)
}

// parseOpenAIRequest is the general path: json.Unmarshal, every field, every error.
func parseOpenAIRequest(body []byte) (req *ChatRequest, stream, includeUsage bool, err error) {
	var in oaiRequest
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, false, false, provider.Errorf(provider.CodeInvalidRequest, "request body is not valid JSON: %v", err)
	}
	if in.N != nil && *in.N != 1 {
		return nil, false, false, provider.Errorf(provider.CodeInvalidRequest, "n=%d: only n=1 is supported", *in.N)
	}
	out := &ChatRequest{ContextBudget: in.ContextBudget, TimeoutMs: in.TimeoutMs, FirstTokenTimeoutMs: in.FirstTokenTimeoutMs}
	out.Model, out.Temperature, out.TopP = in.Model, in.Temperature, in.TopP
	out.MaxTokens = in.MaxCompletionTokens
	if out.MaxTokens == 0 {
		out.MaxTokens = in.MaxTokens
	}
	if len(in.Stop) > 0 && string(in.Stop) != "null" {
		var one string
		if json.Unmarshal(in.Stop, &one) == nil {
			out.Stop = []string{one}
		} else if err := json.Unmarshal(in.Stop, &out.Stop); err != nil {
			return nil, false, false, provider.Errorf(provider.CodeInvalidRequest, "stop must be a string or an array of strings")
		}
	}
	for i, m := range in.Messages {
		text, err := contentText(m.Content)
		if err != nil {
			return nil, false, false, provider.Errorf(provider.CodeInvalidRequest, "messages[%d].content: %v", i, err)
		}
		role, ok := oaiRole(m.Role)
		if !ok {
			return nil, false, false, provider.Errorf(provider.CodeInvalidRequest, "messages[%d].role %q is not supported", i, m.Role)
		}
		pm := api.Message{Role: role, Content: text, ToolCallID: m.ToolCallID}
		switch role {
		case api.RoleAssistant:
			for _, tc := range m.ToolCalls {
				pm.ToolCalls = append(pm.ToolCalls, api.ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments})
			}
		case api.RoleTool:
			pm.Name = m.Name
		}
		out.Messages = append(out.Messages, pm)
	}
	for i, t := range in.Tools {
		if t.Type != "function" && t.Type != "" {
			return nil, false, false, provider.Errorf(provider.CodeInvalidRequest, "tools[%d].type %q: only function tools are supported", i, t.Type)
		}
		out.Tools = append(out.Tools, api.Tool{Name: t.Function.Name, Description: t.Function.Description, Parameters: t.Function.Parameters})
	}
	if len(in.ToolChoice) > 0 && string(in.ToolChoice) != "null" {
		var mode string
		if json.Unmarshal(in.ToolChoice, &mode) == nil {
			out.ToolChoice = &api.ToolChoice{Mode: mode}
		} else {
			var obj struct {
				Function struct {
					Name string `json:"name"`
				} `json:"function"`
			}
			if json.Unmarshal(in.ToolChoice, &obj) != nil || obj.Function.Name == "" {
				return nil, false, false, provider.Errorf(provider.CodeInvalidRequest, "tool_choice must be a mode or {\"type\":\"function\",\"function\":{\"name\":...}}")
			}
			out.ToolChoice = &api.ToolChoice{Mode: api.ToolChoiceTool, Name: obj.Function.Name}
		}
		switch out.ToolChoice.Mode {
		case api.ToolChoiceAuto, api.ToolChoiceNone, api.ToolChoiceRequired, api.ToolChoiceTool:
		default:
			return nil, false, false, provider.Errorf(provider.CodeInvalidRequest, "tool_choice %q is not supported", out.ToolChoice.Mode)
		}
	}
	if rf := in.ResponseFormat; rf != nil {
		f := &api.ResponseFormat{Type: rf.Type}
		switch rf.Type {
		case api.FormatText, api.FormatJSONObject:
		case api.FormatJSONSchema:
			if rf.JSONSchema == nil {
				return nil, false, false, provider.Errorf(provider.CodeInvalidRequest, "response_format json_schema needs json_schema.schema")
			}
			f.Name, f.Schema = rf.JSONSchema.Name, rf.JSONSchema.Schema
		default:
			return nil, false, false, provider.Errorf(provider.CodeInvalidRequest, "response_format.type %q is not supported", rf.Type)
		}
		out.ResponseFormat = f
	}
	include := in.StreamOptions != nil && in.StreamOptions.IncludeUsage
	return out, in.Stream, include, nil
}

// oaiRole maps a Chat Completions message role ("developer" is OpenAI's newer name for
// system).
func oaiRole(role string) (api.Role, bool) {
	switch role {
	case "system", "developer":
		return api.RoleSystem, true
	case "user":
		return api.RoleUser, true
	case "assistant":
		return api.RoleAssistant, true
	case "tool":
		return api.RoleTool, true
	}
	return "", false
}

// contentText reads message content: a string, null, or an array of {"type":"text"} parts.
func contentText(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", errors.New("must be a string or an array of content parts")
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Type != "text" {
			return "", fmt.Errorf("content part type %q is not supported", p.Type)
		}
		b.WriteString(p.Text)
	}
	return b.String(), nil
}

func errorBody(err error) openai.ErrorBody {
	e := provider.AsError(err)
	var out openai.ErrorBody
	out.Error.Message = e.Detail() // the code is its own field
	if out.Error.Message == "" {
		out.Error.Message = string(e.Code)
	}
	out.Error.Code = string(e.Code)
	out.Error.Type = "api_error"
	if st := e.Code.HTTPStatus(); st == 400 || st == 404 {
		out.Error.Type = "invalid_request_error"
	} else if e.Code == provider.CodeUnauthenticated {
		out.Error.Type = "authentication_error"
	} else if e.Code == provider.CodeRateLimited {
		out.Error.Type = "rate_limit_error"
	}
	return out
}

func (s *Service) writeError(w http.ResponseWriter, err error) {
	s.writeErrorStatus(w, 0, err)
}

// writeErrorStatus writes err as an OpenAI error body with status, or the status of its
// code when status is 0.
func (s *Service) writeErrorStatus(w http.ResponseWriter, status int, err error) {
	e := provider.AsError(err)
	if status == 0 {
		status = e.Code.HTTPStatus()
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(int(e.RetryAfter.Seconds()+0.999)))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(errorBody(e))
}

// authorized checks the caller's bearer token against Config.ClientKeys.
func authorized(r *http.Request, keys []string) bool {
	if len(keys) == 0 {
		return true
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	match := 0
	for _, k := range keys {
		match |= subtle.ConstantTimeCompare([]byte(token), []byte(k))
	}
	return match == 1
}

func (s *Service) clientKeys() []string {
	cfg := &s.routes.Load().cfg
	keys := make([]string, 0, len(cfg.ClientKeys))
	for _, k := range cfg.ClientKeys {
		if k.IsSet() {
			keys = append(keys, k.Reveal())
		}
	}
	return keys
}

func (s *Service) handleModels(w http.ResponseWriter, r *http.Request) {
	if !authorized(r, s.clientKeys()) {
		s.m.rejected.WithLabelValues("http", string(provider.CodeUnauthenticated)).Inc()
		s.writeError(w, provider.Errorf(provider.CodeUnauthenticated, "missing or unknown bearer token"))
		return
	}
	type model struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
	}
	out := struct {
		Object string  `json:"object"`
		Data   []model `json:"data"`
	}{Object: "list", Data: []model{}}
	for _, m := range s.ListModels(r.Context()) {
		out.Data = append(out.Data, model{ID: m.ID, Object: "model", OwnedBy: m.Provider})
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

func (s *Service) handleChatCompletions(w http.ResponseWriter, r *http.Request) {
	cfg := &s.routes.Load().cfg
	if !authorized(r, s.clientKeys()) {
		s.m.rejected.WithLabelValues("http", string(provider.CodeUnauthenticated)).Inc()
		s.writeError(w, provider.Errorf(provider.CodeUnauthenticated, "missing or unknown bearer token"))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, cfg.MaxRequestBytes+1))
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// The server's read timeout (http_limits.read_timeout) cut a slow body off;
		// net/http closes the connection after this answer.
		s.m.rejected.WithLabelValues("http", string(provider.CodeTimeout)).Inc()
		s.writeErrorStatus(w, http.StatusRequestTimeout,
			provider.Errorf(provider.CodeTimeout, "request body not received within the server's read timeout"))
		return
	}
	if err != nil {
		s.m.rejected.WithLabelValues("http", string(provider.CodeInvalidRequest)).Inc()
		s.writeError(w, provider.Errorf(provider.CodeInvalidRequest, "reading body: %v", err))
		return
	}
	if int64(len(body)) > cfg.MaxRequestBytes {
		s.m.rejected.WithLabelValues("http", string(provider.CodeInvalidRequest)).Inc()
		s.writeError(w, provider.Errorf(provider.CodeInvalidRequest, "request body over %d bytes", cfg.MaxRequestBytes))
		return
	}
	req, stream, includeUsage, err := ParseOpenAIRequest(body)
	if err != nil {
		s.m.rejected.WithLabelValues("http", string(provider.CodeOf(err))).Inc()
		s.writeError(w, err)
		return
	}
	model := req.Model
	if model == "" {
		model = cfg.DefaultModel
	}
	// The upstream may take longer than the server's write timeout to answer, and a
	// stream longer still: the write deadline moves before each write instead.
	dl := cmetrics.NewStreamDeadline(w, r)
	st, err := s.stream(r.Context(), req, !stream)
	dl.Extend()
	if err != nil {
		s.writeError(w, err)
		return
	}
	defer st.Close()
	id := fmt.Sprintf("chatcmpl-%016x", rand.Uint64())
	created := time.Now().Unix()
	if stream {
		s.writeSSE(w, dl, st, id, model, created, includeUsage)
		return
	}
	resp, err := provider.Collect(st)
	dl.Extend()
	if err != nil {
		s.writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(completionBody(id, model, created, resp, st.Usage()))
}

func completionBody(id, model string, created int64, resp *api.Response, u api.Usage) any {
	msg := map[string]any{"role": "assistant", "content": resp.Text}
	if resp.Text == "" && len(resp.ToolCalls) > 0 {
		msg["content"] = nil
	}
	if resp.Refusal != "" {
		msg["refusal"] = resp.Refusal
	}
	if len(resp.ToolCalls) > 0 {
		calls := make([]openai.ToolCall, len(resp.ToolCalls))
		for i, tc := range resp.ToolCalls {
			calls[i].ID, calls[i].Type = tc.ID, "function"
			calls[i].Function.Name, calls[i].Function.Arguments = tc.Name, tc.Arguments
		}
		msg["tool_calls"] = calls
	}
	return map[string]any{
		"id": id, "object": "chat.completion", "created": created, "model": model,
		"choices": []any{map[string]any{"index": 0, "message": msg, "finish_reason": openAIFinish(resp.FinishReason)}},
		"usage":   openai.Usage{PromptTokens: u.InputTokens, CompletionTokens: u.OutputTokens, TotalTokens: u.InputTokens + u.OutputTokens},
	}
}

// openAIFinish maps a normalised finish reason to the OpenAI vocabulary.
func openAIFinish(f api.FinishReason) string {
	switch f {
	case api.FinishRefusal:
		return "content_filter"
	case "":
		return "stop"
	}
	return string(f)
}
