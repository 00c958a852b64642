package agent

import (
	"context"
)

// Stream is one stream a peer opened, as its StreamHandler sees it. Request is what the
// peer sent with the open; Recv reads the peer's chunks in order (io.EOF when the peer
// ended the stream); Send writes chunks back; returning from the handler ends the stream. A Stream is used by its handler's goroutine;
// Recv and Send may be called from different goroutines.
type Stream struct {
	meta Meta
	open []byte // the data sent with StreamOpen
	send func(ctx context.Context, out Outbound) error

	chunkInbox // the peer's chunks; err is why the stream was torn down locally, if it was
}

func newStream(meta Meta, open []byte, buffer int, send func(context.Context, Outbound) error) *Stream {
	return &Stream{meta: meta, open: open, send: send, chunkInbox: newChunkInbox(buffer)}
}

// Request returns the data the peer sent with StreamOpen (its opening request, e.g. a
// JSON prompt); it may be empty.
func (s *Stream) Request() []byte { return s.open }

// ID returns the stream's id.
func (s *Stream) ID() string { return s.meta.StreamID }

// Meta returns the metadata of the StreamOpen that started the stream.
func (s *Stream) Meta() Meta { return s.meta }

// Recv returns the peer's next chunk. It returns io.EOF once the peer has closed the
// stream and every chunk was read, the stream's failure if the agent tore it down (see
// docs/errors.md), or ctx's error.
func (s *Stream) Recv(ctx context.Context) ([]byte, error) { return s.recv(ctx) }

// Send sends one chunk to the peer.
func (s *Stream) Send(ctx context.Context, chunk []byte) error {
	return s.send(ctx, Outbound{
		Kind: KindStreamChunk, MessageID: s.meta.MessageID, TraceID: s.meta.TraceID,
		To: s.meta.From, StreamID: s.meta.StreamID, Payload: chunk,
	})
}

// push delivers a chunk from the peer, waiting until ctx is done for buffer space.
func (s *Stream) push(ctx context.Context, chunk []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return Errorf(CodeInvalidArgument, "stream %q already closed", s.meta.StreamID)
	}
	select {
	case s.in <- chunk:
		return nil
	default:
	}
	select {
	case s.in <- chunk:
		return nil
	case <-ctx.Done():
		return Errorf(CodeOverloaded, "stream %q: handler is not reading; buffer full", s.meta.StreamID)
	}
}

// closeInput ends the peer's side: Recv returns io.EOF (or failure) after the buffered
// chunks. It is idempotent.
func (s *Stream) closeInput(failure error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeLocked(failure)
}
