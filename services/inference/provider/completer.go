package provider

import (
	"context"
	"io"

	api "github.com/mxp-mesh/mesh/pkg/api/inference"
)

// Completer is a ModelAdapter that can also answer a request whole, in one exchange,
// more cheaply than by streaming it (the service's Hosted connector: one Call to the agent
// instead of a stream).
// The service uses it when its caller collects the answer anyway (a non-streamed chat);
// the answer then counts as the first token, so only the response timeout bounds it.
type Completer interface {
	Complete(ctx context.Context, req *api.Request) (*api.Response, error)
}

// ResponseStream is r as a stream of its chunks (Response.Chunks), already buffered.
func ResponseStream(r *api.Response) api.Stream {
	chunks, i := r.Chunks(), 0
	return &funcStream{next: func() (api.Chunk, error) {
		if i == len(chunks) {
			return api.Chunk{}, io.EOF
		}
		i++
		return chunks[i-1], nil
	}, ready: func() bool { return true }}
}
