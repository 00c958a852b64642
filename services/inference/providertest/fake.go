// Package providertest runs fake model providers that speak each provider's real wire
// format (OpenAI Chat Completions SSE, Anthropic Messages SSE, Gemini
// streamGenerateContent SSE, Ollama /api/chat NDJSON), with scripted replies, tool calls,
// usage and injectable faults. It is for tests and benchmarks only and must never be
// wired into a production path.
package providertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Kinds of fake server.
const (
	OpenAI    = "openai"
	Anthropic = "anthropic"
	Gemini    = "gemini"
	Ollama    = "ollama"
)

// ToolCall is a call the fake model makes.
type ToolCall struct {
	ID        string
	Name      string
	Arguments string // JSON object text
}

// Reply is what the fake model answers to every request (until changed with SetReply).
type Reply struct {
	// Words are streamed one per chunk (include the spaces you want).
	Words     []string
	ToolCalls []ToolCall
	// Finish overrides the provider's natural finish reason (e.g. "SAFETY", "refusal").
	Finish       string
	InputTokens  int
	OutputTokens int
}

// Fault is injected into the next request (one Fault per request, in order).
type Fault struct {
	// Status answers with this HTTP status and the provider's error body.
	Status int
	// RetryAfter is sent as the Retry-After header with Status.
	RetryAfter string
	// EchoCredentials puts the request's credentials in the error message of Status, as
	// a misbehaving or hostile upstream might: the Authorization, X-Api-Key and
	// X-Goog-Api-Key headers as received, the raw query and the bare key.
	EchoCredentials bool
	// FirstTokenDelay holds the first chunk back (headers are sent at once).
	FirstTokenDelay time.Duration
	// ResetAfter closes the connection abruptly after this many body chunks (>0).
	ResetAfter int
	// Malformed sends an unparseable chunk first.
	Malformed bool
	// TerminatorDelay holds the end of the body (the chunked terminator, written when
	// the handler returns) back for this long after the last chunk was flushed.
	TerminatorDelay time.Duration
}

// Recorded is one request the server received.
type Recorded struct {
	Path   string
	Query  string
	Header http.Header
	Body   []byte
}

// Server is a fake provider. Its URL is the base URL to configure the adapter with.
type Server struct {
	Kind string
	URL  string

	srv      *httptest.Server
	mu       sync.Mutex
	reply    Reply
	faults   []Fault
	requests []Recorded
	// record keeps request bodies; benchmarks turn it off.
	record bool
	conns  atomic.Int64
	closed atomic.Int64
	// rendered caches the reply's wire chunks per model (cleared by SetReply), so the
	// fake spends little CPU of its own in benchmarks.
	rendered map[string][]string
}

// New starts a fake server of the given kind on a loopback port.
func New(kind string, reply Reply) *Server {
	s := &Server{Kind: kind, reply: reply, record: true}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			s.conns.Add(1)
		case http.StateClosed, http.StateHijacked:
			s.closed.Add(1)
		}
	}
	s.srv.Start()
	s.URL = s.srv.URL
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// SetReply changes the scripted reply.
func (s *Server) SetReply(r Reply) {
	s.mu.Lock()
	s.reply = r
	s.rendered = nil
	s.mu.Unlock()
}

// Push queues faults for the next requests.
func (s *Server) Push(f ...Fault) {
	s.mu.Lock()
	s.faults = append(s.faults, f...)
	s.mu.Unlock()
}

// SetRecording turns request recording on or off.
func (s *Server) SetRecording(on bool) {
	s.mu.Lock()
	s.record = on
	s.mu.Unlock()
}

// Conns is the number of TCP connections accepted so far.
func (s *Server) Conns() int64 { return s.conns.Load() }

// Closed is the number of connections closed so far (by either side).
func (s *Server) Closed() int64 { return s.closed.Load() }

// Requests returns the requests received so far.
func (s *Server) Requests() []Recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Recorded(nil), s.requests...)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	if s.record {
		s.requests = append(s.requests, Recorded{Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: body})
	}
	var f Fault
	if len(s.faults) > 0 {
		f = s.faults[0]
		s.faults = s.faults[1:]
	}
	reply := s.reply
	s.mu.Unlock()

	if f.Status != 0 {
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.Status)
		msg := ""
		if f.EchoCredentials {
			msg = echoCredentials(r)
		}
		io.WriteString(w, errorBody(s.Kind, f.Status, msg))
		return
	}
	var model struct {
		Model string `json:"model"`
	}
	json.Unmarshal(body, &model)
	if s.Kind == Gemini {
		model.Model = strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1beta/models/"), ":streamGenerateContent")
	}
	s.mu.Lock()
	chunks, ok := s.rendered[model.Model]
	if !ok {
		chunks = s.render(reply, model.Model)
		if s.rendered == nil {
			s.rendered = map[string][]string{}
		}
		s.rendered[model.Model] = chunks
	}
	s.mu.Unlock()
	if s.Kind == Ollama {
		w.Header().Set("Content-Type", "application/x-ndjson")
	} else {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
	}
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	if fl != nil {
		fl.Flush()
	}
	if f.FirstTokenDelay > 0 {
		t := time.NewTimer(f.FirstTokenDelay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if f.Malformed {
		if s.Kind == Ollama {
			io.WriteString(w, "{\"message\": {not json\n")
		} else {
			io.WriteString(w, "data: {\"choices\": [not json\n\n")
		}
	}
	for i, c := range chunks {
		if f.ResetAfter > 0 && i == f.ResetAfter {
			if fl != nil {
				fl.Flush()
			}
			panic(http.ErrAbortHandler)
		}
		io.WriteString(w, c)
		if fl != nil {
			fl.Flush()
		}
	}
	if f.TerminatorDelay > 0 {
		t := time.NewTimer(f.TerminatorDelay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
		}
	}
}

// echoCredentials is the text an upstream that echoes what it was sent would answer.
func echoCredentials(r *http.Request) string {
	var b strings.Builder
	key := ""
	for _, h := range []string{"Authorization", "X-Api-Key", "X-Goog-Api-Key"} {
		if v := r.Header.Get(h); v != "" {
			fmt.Fprintf(&b, "%s: %s\n", h, v)
			if key == "" {
				key = strings.TrimPrefix(v, "Bearer ")
			}
		}
	}
	if r.URL.RawQuery != "" {
		fmt.Fprintf(&b, "GET %s?%s\n", r.URL.Path, r.URL.RawQuery)
	}
	fmt.Fprintf(&b, "Incorrect API key provided: %s", key)
	return b.String()
}

func errorBody(kind string, status int, msg string) string {
	if msg == "" {
		msg = http.StatusText(status)
	}
	if status == 529 && msg == http.StatusText(529) {
		msg = "Overloaded"
	}
	switch kind {
	case Anthropic:
		typ := "api_error"
		switch status {
		case 429:
			typ = "rate_limit_error"
		case 529:
			typ = "overloaded_error"
		case 400:
			typ = "invalid_request_error"
		}
		return fmt.Sprintf(`{"type":"error","error":{"type":%q,"message":%q}}`, typ, msg)
	case Gemini:
		return fmt.Sprintf(`{"error":{"code":%d,"message":%q,"status":"UNAVAILABLE"}}`, status, msg)
	case Ollama:
		return fmt.Sprintf(`{"error":%q}`, msg)
	default:
		return fmt.Sprintf(`{"error":{"message":%q,"type":"server_error","param":null,"code":null}}`, msg)
	}
}

func sse(event string, v any) string {
	b, _ := json.Marshal(v)
	var buf bytes.Buffer
	if event != "" {
		buf.WriteString("event: " + event + "\n")
	}
	buf.WriteString("data: ")
	buf.Write(b)
	buf.WriteString("\n\n")
	return buf.String()
}

// splitArgs cuts a JSON text in two, as providers stream arguments in pieces.
func splitArgs(a string) []string {
	if len(a) < 2 {
		return []string{a}
	}
	return []string{a[:len(a)/2], a[len(a)/2:]}
}

func (s *Server) render(r Reply, model string) []string {
	switch s.Kind {
	case Anthropic:
		return renderAnthropic(r, model)
	case Gemini:
		return renderGemini(r)
	case Ollama:
		return renderOllama(r, model)
	default:
		return renderOpenAI(r, model)
	}
}

func renderOpenAI(r Reply, model string) []string {
	chunk := func(delta map[string]any, finish any) map[string]any {
		return map[string]any{"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1700000000,
			"model": model, "choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}}}
	}
	out := []string{sse("", chunk(map[string]any{"role": "assistant", "content": ""}, nil))}
	for _, w := range r.Words {
		out = append(out, sse("", chunk(map[string]any{"content": w}, nil)))
	}
	for i, tc := range r.ToolCalls {
		out = append(out, sse("", chunk(map[string]any{"tool_calls": []any{map[string]any{"index": i, "id": tc.ID,
			"type": "function", "function": map[string]any{"name": tc.Name, "arguments": ""}}}}, nil)))
		for _, part := range splitArgs(tc.Arguments) {
			out = append(out, sse("", chunk(map[string]any{"tool_calls": []any{map[string]any{"index": i,
				"function": map[string]any{"arguments": part}}}}, nil)))
		}
	}
	finish := "stop"
	if len(r.ToolCalls) > 0 {
		finish = "tool_calls"
	}
	if r.Finish != "" {
		finish = r.Finish
	}
	out = append(out, sse("", chunk(map[string]any{}, finish)))
	out = append(out, sse("", map[string]any{"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1700000000,
		"model": model, "choices": []any{}, "usage": map[string]any{"prompt_tokens": r.InputTokens,
			"completion_tokens": r.OutputTokens, "total_tokens": r.InputTokens + r.OutputTokens}}))
	return append(out, "data: [DONE]\n\n")
}

func renderAnthropic(r Reply, model string) []string {
	out := []string{sse("message_start", map[string]any{"type": "message_start", "message": map[string]any{
		"id": "msg_fake", "type": "message", "role": "assistant", "model": model, "content": []any{},
		"stop_reason": nil, "usage": map[string]any{"input_tokens": r.InputTokens, "output_tokens": 1}}})}
	idx := 0
	if len(r.Words) > 0 {
		out = append(out, sse("content_block_start", map[string]any{"type": "content_block_start", "index": idx,
			"content_block": map[string]any{"type": "text", "text": ""}}))
		out = append(out, sse("ping", map[string]any{"type": "ping"}))
		for _, w := range r.Words {
			out = append(out, sse("content_block_delta", map[string]any{"type": "content_block_delta", "index": idx,
				"delta": map[string]any{"type": "text_delta", "text": w}}))
		}
		out = append(out, sse("content_block_stop", map[string]any{"type": "content_block_stop", "index": idx}))
		idx++
	}
	for _, tc := range r.ToolCalls {
		out = append(out, sse("content_block_start", map[string]any{"type": "content_block_start", "index": idx,
			"content_block": map[string]any{"type": "tool_use", "id": tc.ID, "name": tc.Name, "input": map[string]any{}}}))
		for _, part := range splitArgs(tc.Arguments) {
			out = append(out, sse("content_block_delta", map[string]any{"type": "content_block_delta", "index": idx,
				"delta": map[string]any{"type": "input_json_delta", "partial_json": part}}))
		}
		out = append(out, sse("content_block_stop", map[string]any{"type": "content_block_stop", "index": idx}))
		idx++
	}
	stop := "end_turn"
	if len(r.ToolCalls) > 0 {
		stop = "tool_use"
	}
	if r.Finish != "" {
		stop = r.Finish
	}
	out = append(out, sse("message_delta", map[string]any{"type": "message_delta",
		"delta": map[string]any{"stop_reason": stop, "stop_sequence": nil},
		"usage": map[string]any{"output_tokens": r.OutputTokens}}))
	return append(out, sse("message_stop", map[string]any{"type": "message_stop"}))
}

func renderGemini(r Reply) []string {
	var out []string
	for _, w := range r.Words {
		out = append(out, sse("", map[string]any{"candidates": []any{map[string]any{
			"content": map[string]any{"role": "model", "parts": []any{map[string]any{"text": w}}}, "index": 0}}}))
	}
	var parts []any
	for _, tc := range r.ToolCalls {
		var args any
		json.Unmarshal([]byte(tc.Arguments), &args)
		fc := map[string]any{"name": tc.Name, "args": args}
		if tc.ID != "" {
			fc["id"] = tc.ID
		}
		parts = append(parts, map[string]any{"functionCall": fc})
	}
	finish := "STOP"
	if r.Finish != "" {
		finish = r.Finish
	}
	last := map[string]any{"candidates": []any{map[string]any{
		"content": map[string]any{"role": "model", "parts": parts}, "finishReason": finish, "index": 0}},
		"usageMetadata": map[string]any{"promptTokenCount": r.InputTokens, "candidatesTokenCount": r.OutputTokens,
			"totalTokenCount": r.InputTokens + r.OutputTokens}}
	if parts == nil {
		last["candidates"].([]any)[0].(map[string]any)["content"] = map[string]any{"role": "model", "parts": []any{map[string]any{"text": ""}}}
	}
	return append(out, sse("", last))
}

func renderOllama(r Reply, model string) []string {
	line := func(v any) string { b, _ := json.Marshal(v); return string(b) + "\n" }
	var out []string
	for _, w := range r.Words {
		out = append(out, line(map[string]any{"model": model, "created_at": "2025-01-01T00:00:00Z",
			"message": map[string]any{"role": "assistant", "content": w}, "done": false}))
	}
	if len(r.ToolCalls) > 0 {
		var calls []any
		for _, tc := range r.ToolCalls {
			var args any
			json.Unmarshal([]byte(tc.Arguments), &args)
			calls = append(calls, map[string]any{"function": map[string]any{"name": tc.Name, "arguments": args}})
		}
		out = append(out, line(map[string]any{"model": model, "created_at": "2025-01-01T00:00:00Z",
			"message": map[string]any{"role": "assistant", "content": "", "tool_calls": calls}, "done": false}))
	}
	reason := "stop"
	if r.Finish != "" {
		reason = r.Finish
	}
	return append(out, line(map[string]any{"model": model, "created_at": "2025-01-01T00:00:00Z",
		"message": map[string]any{"role": "assistant", "content": ""}, "done": true, "done_reason": reason,
		"total_duration": 1000, "prompt_eval_count": r.InputTokens, "eval_count": r.OutputTokens}))
}
