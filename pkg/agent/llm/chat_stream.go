package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/mxp-mesh/mesh/pkg/agent"
	"github.com/mxp-mesh/mesh/pkg/api/inference"
	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// ChatStreamer is a model that streams its answer as it is generated: text chunks,
// tool-call deltas, then a chunk with the finish reason and usage, then io.EOF.
// AdapterModel, the mesh's inference service (Mesh) and the service in process (its
// *Service has this method) are ChatStreamers.
type ChatStreamer interface {
	ChatStream(ctx context.Context, req *ChatRequest) (Stream, error)
}

// ChatStream streams req through the adapter.
func (m AdapterModel) ChatStream(ctx context.Context, req *ChatRequest) (inference.Stream, error) {
	return m.Adapter.Stream(ctx, &req.Request)
}

// RelayText sends the text of a model stream to dst chunk by chunk as it arrives (for
// example to the caller's Stream in a StreamHandler) and returns the whole response once
// the model is done. It closes src. A failed Send stops the relay and the model stream.
func RelayText(ctx context.Context, dst interface {
	Send(ctx context.Context, chunk []byte) error
}, src inference.Stream) (*ChatResponse, error) {
	tee := &teeStream{src: src, send: func(text string) error { return dst.Send(ctx, []byte(text)) }}
	resp, err := CollectStream(tee)
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// teeStream passes chunks through and hands each piece of text to send.
type teeStream struct {
	src  inference.Stream
	send func(string) error
}

func (t *teeStream) Recv() (inference.Chunk, error) {
	c, err := t.src.Recv()
	if err != nil {
		return c, err
	}
	if c.Text != "" {
		if err := t.send(c.Text); err != nil {
			if errors.Is(err, io.EOF) { // a writer must not end the reader's stream
				err = io.ErrClosedPipe
			}
			return inference.Chunk{}, err
		}
	}
	return c, nil
}

func (t *teeStream) Close() error { return t.src.Close() }

// meshConn is what the toolkit needs of a connected agent to reach the mesh's inference
// service: agentConn over *agent.Agent, or a stand-in in tests.
type meshConn interface {
	CallJSON(ctx context.Context, to string, req, resp any) error
	openStream(ctx context.Context, to string, kind mxp.StreamKind, data []byte) (chunkStream, error)
}

// chunkStream is the client side of an MXP stream (*agent.ClientStream).
type chunkStream interface {
	Recv(ctx context.Context) ([]byte, error)
	Close(ctx context.Context) error
}

// agentConn reaches the mesh through a running agent.
type agentConn struct{ *agent.Agent }

func (c agentConn) openStream(ctx context.Context, to string, kind mxp.StreamKind, data []byte) (chunkStream, error) {
	cs, err := c.OpenStream(ctx, to, kind, data)
	if err != nil {
		return nil, err // never a typed nil in the interface
	}
	return cs, nil
}

// Mesh returns the mesh's inference service, reached through the agent a, as a ChatModel
// and a ChatStreamer: each Chat is a Call to the "inference" service with the request as
// JSON, each ChatStream a StreamOpen to it. Use it as a ToolLoop's Model.
func Mesh(a *agent.Agent) MeshModel { return MeshModel{conn: agentConn{a}} }

// MeshModel is the mesh's inference service as a model (see Mesh).
type MeshModel struct{ conn meshConn }

// Chat answers req with a whole response. Errors carry the service's codes (see
// agent.CodeOf).
func (m MeshModel) Chat(ctx context.Context, req *ChatRequest) (*ChatResponse, error) {
	var resp ChatResponse
	if err := m.conn.CallJSON(ctx, inferenceService, req, &resp); err != nil {
		return nil, fmt.Errorf("llm: inference: %w", err)
	}
	return &resp, nil
}

// ChatStream asks the mesh's inference service for the answer to req as a stream: a
// StreamOpen to the "inference" service whose data is req as JSON (the same request a
// Call to it carries), answered chunk by chunk as the model generates (docs/protocol.md,
// streams). ctx bounds the whole stream; Close the stream (or read it to io.EOF) when
// done — closing early cancels the request. Errors carry the service's codes (see
// agent.CodeOf): "model_not_found", "invalid_request", "rate_limited", "circuit_open", ...
func (m MeshModel) ChatStream(ctx context.Context, req *ChatRequest) (Stream, error) {
	return m.OpenStream(ctx, req)
}

// OpenStream is ChatStream with the concrete stream, which also says which model and
// provider answered.
func (m MeshModel) OpenStream(ctx context.Context, req *ChatRequest) (*ModelStream, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, agent.Errorf(agent.CodeInvalidArgument, "encoding the chat request: %v", err)
	}
	cs, err := m.conn.openStream(ctx, inferenceService, mxp.StreamKindJSON, body)
	if err != nil {
		return nil, fmt.Errorf("llm: inference stream: %w", err)
	}
	return &ModelStream{ctx: ctx, cs: cs}, nil
}

// ModelStream is a model's answer streaming from the mesh's inference service (see
// Agent.ChatStream). It is a inference.Stream: Recv returns the text, tool-call, refusal
// and finish/usage chunks as the service sends them, then io.EOF; Model and Provider say
// who answered once the stream has ended cleanly. One goroutine reads it.
type ModelStream struct {
	ctx context.Context
	cs  chunkStream

	model, provider string
	ended           bool
}

// streamChunk is one chunk of the service's stream: a inference.Chunk, or the summary
// that ends it (the only chunk with "model" or "provider").
type streamChunk struct {
	inference.Chunk
	Model    string `json:"model"`
	Provider string `json:"provider"`
}

// decodeModelChunk parses one chunk of the service's stream.
func decodeModelChunk(b []byte) (streamChunk, error) {
	var c streamChunk
	if err := json.Unmarshal(b, &c); err != nil {
		return streamChunk{}, agent.Errorf(agent.CodeInvalidPayload, "inference stream: chunk %.64q is not a JSON chunk: %v", b, err)
	}
	return c, nil
}

// Recv returns the next chunk; io.EOF after the last one; the service's error (with its
// code) if the stream failed; ctx's error if the stream's context ended (the stream is
// then closed, which cancels the request).
func (s *ModelStream) Recv() (inference.Chunk, error) {
	for {
		b, err := s.cs.Recv(s.ctx)
		if errors.Is(err, io.EOF) {
			s.ended = true
			return inference.Chunk{}, io.EOF
		}
		if err != nil {
			if s.ctx.Err() != nil {
				_ = s.Close()
				return inference.Chunk{}, err
			}
			s.ended = true
			return inference.Chunk{}, fmt.Errorf("llm: inference stream: %w", err)
		}
		c, err := decodeModelChunk(b)
		if err != nil {
			_ = s.Close()
			return inference.Chunk{}, err
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
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), agent.DefaultSendTimeout)
	defer cancel()
	return s.cs.Close(ctx)
}

// inferenceService is the mesh's inference service by its well-known name
// (mxp.ServiceByName).
const inferenceService = "inference"
