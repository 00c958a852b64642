package provider

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	api "github.com/mxp-mesh/mesh/pkg/api/inference"
	"github.com/mxp-mesh/mesh/pkg/common/security"
)

// Limits on what a provider may send us. A line or an error body above them is an error,
// never an unbounded allocation.
const (
	MaxLineBytes      = 4 << 20
	MaxErrorBodyBytes = 64 << 10
)

// sseEvent is one Server-Sent Event: its event name (may be empty) and joined data lines.
type sseEvent struct {
	Event string
	Data  []byte
}

// sseReader parses text/event-stream as the WHATWG spec describes: lines, "event:" and
// "data:" fields, a blank line dispatches, ":" starts a comment.
type sseReader struct {
	r       *bufio.Reader
	event   string
	data    []byte
	hasData bool
}

func newSSEReader(r io.Reader) *sseReader {
	return &sseReader{r: newBodyReader(r)}
}

// bodyReaders recycles the 4 KiB buffers response bodies are read through: a new one
// per call was a fifth of the bytes a call through the gateway allocated. A buffer goes
// back when its stream ended cleanly and is closed (see chunkStream.CloseEnded).
var bodyReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}

func newBodyReader(r io.Reader) *bufio.Reader {
	br := bodyReaders.Get().(*bufio.Reader)
	br.Reset(r)
	return br
}

// Next returns the next event, or io.EOF at a clean end of stream. The event's Data is
// valid until the next call.
func (s *sseReader) Next() (sseEvent, error) {
	for {
		line, err := readLine(s.r)
		if err != nil {
			if errors.Is(err, io.EOF) && s.hasData {
				ev := sseEvent{Event: s.event, Data: s.data}
				s.event, s.data, s.hasData = "", s.data[:0], false
				return ev, nil
			}
			return sseEvent{}, err
		}
		if len(line) == 0 {
			if !s.hasData {
				s.event = ""
				continue
			}
			ev := sseEvent{Event: s.event, Data: s.data}
			s.event, s.data, s.hasData = "", s.data[:0], false
			return ev, nil
		}
		if line[0] == ':' {
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			s.event = string(value)
		case "data":
			if s.hasData {
				s.data = append(s.data, '\n')
			}
			s.data = append(s.data, value...)
			s.hasData = true
		}
	}
}

// readLine reads one line without its terminator (\n or \r\n), bounded by MaxLineBytes.
// The line is valid until the next read from r.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		frag, err := r.ReadSlice('\n')
		if err == nil && line == nil {
			line = frag // the common case: the whole line is in the buffer, no copy
			break
		}
		if len(line)+len(frag) > MaxLineBytes {
			return nil, fmt.Errorf("line longer than %d bytes", MaxLineBytes)
		}
		line = append(line, frag...)
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) && len(line) > 0 {
			break
		}
		return nil, err
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	return line, nil
}

// chunkStream adapts a decode function to the Stream interface. decode returns the
// chunks one wire event produced (possibly none) or an error; io.EOF ends the stream.
// The slice may be reused by the next call, which comes only once it was used up.
type chunkStream struct {
	body    io.Closer
	decode  func() ([]api.Chunk, error)
	reader  *bufio.Reader // the body's buffer, for Buffered
	pending []api.Chunk
	err     error
	once    sync.Once
}

func (s *chunkStream) Recv() (api.Chunk, error) {
	for len(s.pending) == 0 {
		if s.err != nil {
			return api.Chunk{}, s.err
		}
		chunks, err := s.decode()
		s.pending = chunks
		if err != nil {
			s.err = err
		}
	}
	c := s.pending[0]
	s.pending = s.pending[1:]
	return c, nil
}

// Buffered implements Buffered: a decoded chunk is pending, body bytes are buffered, or
// the body says more has already arrived (Pending, see upstream.Transport).
func (s *chunkStream) Buffered() bool {
	if len(s.pending) > 0 || s.err != nil || (s.reader != nil && s.reader.Buffered() > 0) {
		return true
	}
	p, ok := s.body.(interface{ Pending() bool })
	return ok && p.Pending()
}

// CloseWouldWait reports whether CloseEnded, after a clean end of stream, would wait for
// the network: the body's last bytes (the chunked terminator) are neither buffered nor
// pending. Callers then close off their own path.
func (s *chunkStream) CloseWouldWait() bool {
	if s.body == nil || !errors.Is(s.err, io.EOF) || (s.reader != nil && s.reader.Buffered() > 0) {
		return false
	}
	p, ok := s.body.(interface{ Pending() bool })
	return !ok || !p.Pending()
}

// DrainTimeout bounds how long a detached body's last bytes are waited for (see
// Detach) before its connection is closed instead of reused.
const DrainTimeout = 5 * time.Second

// Detach unbinds what is left of the body from the request's context, when the body
// can (upstream.Transport's can, net/http's cannot): a CloseEnded on another goroutine
// after the context has ended then still drains the chunked terminator, within
// DrainTimeout, and the connection goes back to the pool. Callers that close off their
// own path call it first, on their path, before the context may end.
func (s *chunkStream) Detach() {
	if d, ok := s.body.(interface{ Detach(time.Duration) bool }); ok {
		d.Detach(DrainTimeout)
	}
}

// Close releases the body without reading more of it: the connection is closed rather
// than reused. It may be called from another goroutine to abort a Recv.
func (s *chunkStream) Close() error {
	s.once.Do(func() {
		if s.body != nil {
			s.body.Close()
		}
	})
	return nil
}

// CloseEnded is Close for the goroutine that read the stream to its end (or one it
// started after that). After a clean end the few bytes left (the chunked terminator) are
// read first, so the HTTP connection goes back to the pool, and the read buffer goes
// back to bodyReaders: no Recv can be reading it. After an error it is Close.
func (s *chunkStream) CloseEnded() error {
	s.once.Do(func() {
		if s.body == nil {
			return
		}
		if errors.Is(s.err, io.EOF) {
			if r, ok := s.body.(io.Reader); ok {
				io.CopyN(io.Discard, r, 4<<10)
			}
			if s.reader != nil {
				s.reader.Reset(nil)
				bodyReaders.Put(s.reader)
				s.reader = nil
			}
		}
		s.body.Close()
	})
	return nil
}

// streamReadError classifies an error reading a response body after the status line:
// a reset or truncated stream is retryable as long as nothing was passed on.
func streamReadError(provider string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return AsError(err)
	}
	return &Error{Code: CodeProviderError, Provider: provider, Retryable: true,
		Message: "stream interrupted: " + err.Error(), Err: err}
}

// malformed reports a chunk the adapter could not parse.
func malformed(provider string, data []byte, err error) error {
	return &Error{Code: CodeProviderError, Provider: provider, Retryable: true,
		Message: fmt.Sprintf("malformed chunk %q: %v", security.Excerpt(string(data), MaxUpstreamExcerpt), err), Err: err}
}

// httpPost sends body as JSON and returns the response when the status is 200. Any other
// status is read (bounded), its message extracted by errMessage and classified.
func httpPost(ctx context.Context, client *http.Client, provider, url string, header http.Header,
	body any, errMessage func([]byte) string) (*http.Response, error) {
	buf, err := json.Marshal(body)
	if err != nil {
		return nil, &Error{Code: CodeInvalidRequest, Provider: provider, Message: "encode request: " + err.Error()}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(buf))
	if err != nil {
		return nil, &Error{Code: CodeInvalidRequest, Provider: provider, Message: err.Error()}
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		e := AsError(err)
		e.Provider = provider
		if ctx.Err() != nil {
			e = AsError(ctx.Err())
			e.Provider = provider
		}
		return nil, e
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, MaxErrorBodyBytes))
	msg := ""
	if errMessage != nil {
		msg = errMessage(data)
	}
	if msg == "" {
		msg = string(data) // StatusError keeps a bounded, scrubbed excerpt
	}
	return nil, StatusError(provider, resp.StatusCode, resp.Header, msg)
}

// Collect reads s to the end and closes it.
func Collect(s api.Stream) (*api.Response, error) {
	ended := false
	defer func() {
		if e, ok := s.(interface{ CloseEnded() error }); ok && ended {
			e.CloseEnded() // read to its end here, on this goroutine
		} else {
			s.Close()
		}
	}()
	var acc api.Accumulator
	for {
		c, err := s.Recv()
		if errors.Is(err, io.EOF) {
			ended = true
			return acc.Response(), nil
		}
		if err != nil {
			return nil, err
		}
		acc.Add(c)
	}
}

// systemPrompt joins Request.System and any RoleSystem messages, in order.
func systemPrompt(req *api.Request) string {
	parts := make([]string, 0, 2)
	if req.System != "" {
		parts = append(parts, req.System)
	}
	for _, m := range req.Messages {
		if m.Role == api.RoleSystem && m.Content != "" {
			parts = append(parts, m.Content)
		}
	}
	return strings.Join(parts, "\n\n")
}

// toolNames maps tool call ids to tool names across the conversation, so providers that
// key tool results by name (Gemini, Ollama) can be given one.
func toolNames(msgs []api.Message) map[string]string {
	names := map[string]string{}
	for _, m := range msgs {
		for _, tc := range m.ToolCalls {
			names[tc.ID] = tc.Name
		}
	}
	return names
}

// argsObject parses tool-call arguments into a JSON object; empty means {}.
func argsObject(args string) (json.RawMessage, error) {
	args = strings.TrimSpace(args)
	if args == "" {
		return json.RawMessage("{}"), nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(args), &obj); err != nil {
		return nil, fmt.Errorf("tool call arguments are not a JSON object: %w", err)
	}
	return json.RawMessage(args), nil
}
