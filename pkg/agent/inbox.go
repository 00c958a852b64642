package agent

import (
	"context"
	"io"
	"sync"
)

// chunkInbox is the receiving half that Stream (a handler's view of a stream) and
// ClientStream (the opener's view) share: a buffered channel of the peer's chunks, closed
// once, with the reason the stream ended. How chunks are pushed differs (a handler's
// stream waits for buffer space, an opener's fails fast), so push stays with each type;
// both push under mu, which guards closed, err and sends on in.
type chunkInbox struct {
	in     chan []byte
	mu     sync.Mutex
	closed bool
	err    error // why the stream ended; nil for a clean end
}

func newChunkInbox(buffer int) chunkInbox { return chunkInbox{in: make(chan []byte, buffer)} }

// recv returns the peer's next chunk; io.EOF once the stream ended cleanly and every chunk
// was read; the stream's error if it failed; or ctx's error.
func (b *chunkInbox) recv(ctx context.Context) ([]byte, error) {
	select {
	case c, ok := <-b.in:
		if ok {
			return c, nil
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.err != nil {
			return nil, b.err
		}
		return nil, io.EOF
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// closeLocked ends the inbox with err (nil: a clean end) and reports whether this call
// ended it; only the first end counts. The caller holds mu.
func (b *chunkInbox) closeLocked(err error) bool {
	if b.closed {
		return false
	}
	b.closed, b.err = true, err
	close(b.in)
	return true
}
