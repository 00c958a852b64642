package inference

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"unicode/utf8"

	api "github.com/mxp-mesh/mesh/pkg/api/inference"
	cmetrics "github.com/mxp-mesh/mesh/pkg/common/metrics"
	"github.com/mxp-mesh/mesh/services/inference/internal/openai"
)

// sseWriter writes chat.completion.chunk events, flushing each so that tokens reach the
// client as they arrive.
type sseWriter struct {
	// textPrefix is the encoded chunk up to the content string, for the fast path.
	textPrefix []byte
	w          http.ResponseWriter
	dl         cmetrics.StreamDeadline
	fl         http.Flusher
	buf        []byte
	chunk      openai.Chunk
	err        error
}

func (sw *sseWriter) event(v any) {
	if sw.err != nil {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		sw.err = err
		return
	}
	sw.buf = append(sw.buf[:0], "data: "...)
	sw.buf = append(sw.buf, b...)
	sw.buf = append(sw.buf, '\n', '\n')
	sw.dl.Extend()
	_, sw.err = sw.w.Write(sw.buf)
}

func (sw *sseWriter) flush() {
	if sw.err == nil && sw.fl != nil {
		sw.fl.Flush()
	}
}

// text writes a content-only delta without reflection: the hot path of a stream.
func (sw *sseWriter) text(s string) {
	if sw.err != nil {
		return
	}
	sw.buf = append(sw.buf[:0], sw.textPrefix...)
	sw.buf = appendJSONString(sw.buf, s)
	sw.buf = append(sw.buf, "},\"finish_reason\":null}]}\n\n"...)
	sw.dl.Extend()
	_, sw.err = sw.w.Write(sw.buf)
}

// appendJSONString appends s as a JSON string, escaping as encoding/json does (quotes,
// backslash, control characters, <, >, &, U+2028 and U+2029; invalid UTF-8 becomes U+FFFD).
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\\ufffd"...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func (sw *sseWriter) delta(d openai.Delta, finish *string) {
	sw.chunk.Choices[0] = openai.Choice{Delta: d, FinishReason: finish}
	sw.event(&sw.chunk)
}

// writeSSE streams st to w as OpenAI Chat Completions SSE. Errors after the headers are
// sent as a final {"error": ...} event without [DONE], as OpenAI does.
// dl moves the write deadline before each write, so the stream is never cut off by the
// server's write timeout while it keeps moving.
func (s *Service) writeSSE(w http.ResponseWriter, dl cmetrics.StreamDeadline, st *Stream, id, model string, created int64, includeUsage bool) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	sw := &sseWriter{w: w, dl: dl, fl: fl, buf: make([]byte, 0, 512),
		chunk: openai.Chunk{ID: id, Object: "chat.completion.chunk", Created: created, Model: model, Choices: make([]openai.Choice, 1)}}
	// The encoded chunk up to its choices ({"id":...,"model":...,"choices":null}, cut
	// before ,"choices"), then a content-only delta's opening.
	head, _ := json.Marshal(openai.Chunk{ID: id, Object: "chat.completion.chunk", Created: created, Model: model})
	head = head[:bytes.LastIndex(head, []byte(`,"choices":`))]
	sw.textPrefix = append(append([]byte("data: "), head...), `,"choices":[{"index":0,"delta":{"content":`...)
	role := "assistant"
	var finish api.FinishReason
	for sw.err == nil {
		c, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			sw.event(errorBody(err)) // the handler returns next: net/http flushes it
			return
		}
		if role == "" && c.Text != "" && c.Refusal == "" && c.ToolCall == nil {
			sw.text(c.Text)
			if c.FinishReason != "" {
				finish = c.FinishReason
			}
			if !st.Buffered() {
				sw.flush()
			}
			continue
		}
		d := openai.Delta{Role: role}
		emit := role != ""
		if c.Text != "" {
			d.Content, emit = c.Text, true
		}
		if c.Refusal != "" {
			d.Refusal, emit = c.Refusal, true
		}
		if tc := c.ToolCall; tc != nil {
			idx := tc.Index
			call := openai.ToolCall{Index: &idx, ID: tc.ID}
			if tc.ID != "" {
				call.Type = "function"
			}
			call.Function.Name, call.Function.Arguments = tc.Name, tc.Arguments
			d.ToolCalls, emit = []openai.ToolCall{call}, true
		}
		if emit {
			sw.delta(d, nil)
			role = ""
		}
		if c.FinishReason != "" {
			finish = c.FinishReason
		}
		// Flush only when the next chunk is not already here: bursts go out in one
		// write, and no chunk waits for a later one.
		if !st.Buffered() {
			sw.flush()
		}
	}
	if sw.err != nil {
		return
	}
	fr := openAIFinish(finish)
	sw.delta(openai.Delta{}, &fr)
	if includeUsage {
		u := st.Usage()
		sw.event(&openai.Chunk{ID: id, Object: "chat.completion.chunk", Created: created, Model: model, Choices: []openai.Choice{},
			Usage: &openai.Usage{PromptTokens: u.InputTokens, CompletionTokens: u.OutputTokens, TotalTokens: u.InputTokens + u.OutputTokens}})
	}
	if sw.err == nil {
		// No flush: the handler returns next and net/http writes what is buffered and
		// the chunked terminator in one system call.
		sw.dl.Extend()
		_, sw.err = io.WriteString(w, "data: [DONE]\n\n")
	}
}
