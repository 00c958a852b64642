package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/mxp-mesh/mesh/pkg/mxp"
	"github.com/mxp-mesh/mesh/services/inference"
	"github.com/mxp-mesh/mesh/services/inference/provider"
)

// ChatStreamer is a model that streams its answer as it is generated: text chunks,
// tool-call deltas, then a chunk with the finish reason and usage, then io.EOF.
// AdapterModel, InferenceModel and the mesh's inference service (Agent.Model, or
// Agent.ChatStream directly) are ChatStreamers.
type ChatStreamer interface {
	ChatStream(ctx context.Context, req *ChatRequest) (provider.Stream, error)
}

// ChatStream streams req through the adapter.
func (m AdapterModel) ChatStream(ctx context.Context, req *ChatRequest) (provider.Stream, error) {
	return m.Adapter.Stream(ctx, &req.Request)
}

// InferenceModel is an inference service in the same process (as `mxp dev` runs it, or
// an embedded one) as a ChatModel and a ChatStreamer, with the service's routing,
// retries, breakers and budgeting.
type InferenceModel struct {
	Service *inference.Service
}

// Chat answers req with a whole response.
func (m InferenceModel) Chat(ctx context.Context, req *ChatRequest) (*ChatResponse, error) {
	return m.Service.Chat(ctx, req)
}

// ChatStream streams the answer to req.
func (m InferenceModel) ChatStream(ctx context.Context, req *ChatRequest) (provider.Stream, error) {
	return m.Service.Stream(ctx, req)
}

// RelayText sends the text of a model stream to dst chunk by chunk as it arrives (for
// example to the caller's Stream in a StreamHandler) and returns the whole response once
// the model is done. It closes src. A failed Send stops the relay and the model stream.
func RelayText(ctx context.Context, dst interface {
	Send(ctx context.Context, chunk []byte) error
}, src provider.Stream) (*ChatResponse, error) {
	tee := &teeStream{src: src, send: func(text string) error { return dst.Send(ctx, []byte(text)) }}
	resp, err := CollectStream(tee)
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// teeStream passes chunks through and hands each piece of text to send.
type teeStream struct {
	src  provider.Stream
	send func(string) error
}

func (t *teeStream) Recv() (provider.Chunk, error) {
	c, err := t.src.Recv()
	if err != nil {
		return c, err
	}
	if c.Text != "" {
		if err := t.send(c.Text); err != nil {
			if errors.Is(err, io.EOF) { // a writer must not end the reader's stream
				err = io.ErrClosedPipe
			}
			return provider.Chunk{}, err
		}
	}
	return c, nil
}

func (t *teeStream) Close() error { return t.src.Close() }

// ChatStream streams the answer to req from the mesh's inference service, so
// Agent.Model() is a ChatStreamer as well as a ChatModel.
func (m meshModel) ChatStream(ctx context.Context, req *ChatRequest) (provider.Stream, error) {
	return m.a.ChatStream(ctx, req)
}

// ChatStream asks the mesh's inference service for the answer to req as a stream: a
// StreamOpen to the "inference" service whose data is req as JSON (the same request a
// Call to it carries), answered chunk by chunk as the model generates (docs/protocol.md,
// streams). ctx bounds the whole stream; Close the stream (or read it to io.EOF) when
// done — closing early cancels the request. Errors carry the service's codes (see
// CodeOf): "model_not_found", "invalid_request", "rate_limited", "circuit_open", ...
func (a *Agent) ChatStream(ctx context.Context, req *ChatRequest) (*ModelStream, error) {
	l, err := a.connected()
	if err != nil {
		return nil, err
	}
	return openModelStream(ctx, l, req)
}

// openModelStream opens the inference stream for req over l.
func openModelStream(ctx context.Context, l *link, req *ChatRequest) (*ModelStream, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, Errorf(CodeInvalidArgument, "encoding the chat request: %v", err)
	}
	cs, err := l.openStream(ctx, mxp.ServiceInference, mxp.StreamKindJSON, body)
	if err != nil {
		return nil, fmt.Errorf("agent: inference stream: %w", err)
	}
	return &ModelStream{ctx: ctx, cs: cs}, nil
}

// ModelStream is a model's answer streaming from the mesh's inference service (see
// Agent.ChatStream). It is a provider.Stream: Recv returns the text, tool-call, refusal
// and finish/usage chunks as the service sends them, then io.EOF; Model and Provider say
// who answered once the stream has ended cleanly. One goroutine reads it.
type ModelStream struct {
	ctx context.Context
	cs  *ClientStream

	model, provider string
	ended           bool
}

// streamChunk is one chunk of the service's stream: a provider.Chunk, or the summary
// that ends it (the only chunk with "model" or "provider").
type streamChunk struct {
	provider.Chunk
	Model    string `json:"model"`
	Provider string `json:"provider"`
}

// decodeModelChunk parses one chunk of the service's stream.
func decodeModelChunk(b []byte) (streamChunk, error) {
	var c streamChunk
	if err := json.Unmarshal(b, &c); err != nil {
		return streamChunk{}, Errorf(CodeInvalidPayload, "inference stream: chunk %.64q is not a JSON chunk: %v", b, err)
	}
	return c, nil
}

// Recv returns the next chunk; io.EOF after the last one; the service's error (with its
// code) if the stream failed; ctx's error if the stream's context ended (the stream is
// then closed, which cancels the request).
func (s *ModelStream) Recv() (provider.Chunk, error) {
	for {
		b, err := s.cs.Recv(s.ctx)
		if errors.Is(err, io.EOF) {
			s.ended = true
			return provider.Chunk{}, io.EOF
		}
		if err != nil {
			if s.ctx.Err() != nil {
				_ = s.Close()
				return provider.Chunk{}, err
			}
			s.ended = true
			return provider.Chunk{}, fmt.Errorf("agent: inference stream: %w", err)
		}
		c, err := decodeModelChunk(b)
		if err != nil {
			_ = s.Close()
			return provider.Chunk{}, err
		}
		if c.Model != "" || c.Provider != "" {
			s.model, s.provider = c.Model, c.Provider
			continue
		}
		return c.Chunk, nil
	}
}

// Model is the model that answered (known once the stream ended cleanly).
func (s *ModelStream) Model() string { return s.model }

// Provider is the provider that answered (known once the stream ended cleanly).
func (s *ModelStream) Provider() string { return s.provider }

// Close ends the stream; before its end, that cancels the request at the edge. It may be
// called more than once.
func (s *ModelStream) Close() error {
	if s.ended {
		return nil
	}
	s.ended = true
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), DefaultSendTimeout)
	defer cancel()
	return s.cs.Close(ctx)
}
