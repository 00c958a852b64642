package agent

import (
	"context"
	"errors"
	"io"

	"github.com/mxp-mesh/mesh/services/inference"
	"github.com/mxp-mesh/mesh/services/inference/provider"
)

// ChatStreamer is a model that streams its answer as it is generated: text chunks,
// tool-call deltas, then a chunk with the finish reason and usage, then io.EOF.
// AdapterModel and InferenceModel are ChatStreamers. (The edge carries Calls, not
// streams, to services, so the mesh's inference service is reached through Agent.Model,
// which does not stream.)
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
