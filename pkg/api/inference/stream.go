package inference

import "context"

// Stream yields chunks as the provider sends them. Recv returns io.EOF after the last
// chunk. Close releases the connection and may be called at any time, more than once.
type Stream interface {
	Recv() (Chunk, error)
	Close() error
}

// Buffered is implemented by streams that can tell whether the next Recv will return
// without waiting on the network. Writers use it to flush only when the stream would
// block, which coalesces bursts of chunks into one write without delaying any chunk.
type Buffered interface {
	Buffered() bool
}

// ModelAdapter is one model provider. Stream sends the request and returns once the
// provider accepted it (HTTP status read), so errors before the first byte of the body
// are returned by Stream itself and can be retried by the caller. ctx bounds the whole
// response, body included.
type ModelAdapter interface {
	Name() string
	Stream(ctx context.Context, req *Request) (Stream, error)
}
