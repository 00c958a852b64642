package agent

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// DefaultClientStreamBuffer is how many chunks a stream the agent opened buffers before
// the stream fails with CodeOverloaded.
const DefaultClientStreamBuffer = 256

// call sends a Call to target and returns the Response payload. The timeout sent with it
// is the context's remaining time, rounded up to whole seconds (0 lets the mesh choose).
func (l *link) call(ctx context.Context, target mxp.AgentID, data []byte) ([]byte, error) {
	p := mxp.CallPayload{Target: target, TimeoutSeconds: timeoutSeconds(ctx), Data: data}
	payload, err := p.AppendPayload(make([]byte, 0, mxp.CallHeaderSize+len(data)))
	if err != nil {
		return nil, &Error{Code: CodeInvalidArgument, Message: err.Error(), Err: err}
	}
	f, err := l.request(ctx, mxp.TypeCall, 0, payload)
	if err != nil {
		return nil, err
	}
	return f.Payload, nil
}

func timeoutSeconds(ctx context.Context) uint32 {
	dl, ok := ctx.Deadline()
	if !ok {
		return 0
	}
	s := math.Ceil(time.Until(dl).Seconds())
	switch {
	case s < 1:
		return 1
	case s > math.MaxUint32:
		return math.MaxUint32
	}
	return uint32(s)
}

// discover asks the registry for agents matching req.
func (l *link) discover(ctx context.Context, req mxp.DiscoverRequest) ([]mxp.AgentRecord, error) {
	payload, err := req.AppendPayload(nil)
	if err != nil {
		return nil, &Error{Code: CodeInvalidArgument, Message: err.Error(), Err: err}
	}
	f, err := l.request(ctx, mxp.TypeAgentDiscover, 0, payload)
	if err != nil {
		return nil, err
	}
	resp, err := mxp.DecodeDiscoverResponse(f.Payload)
	if err != nil {
		return nil, err
	}
	return resp.Agents, nil
}

// publish sends an Event on topic. Events are one-way: no answer is awaited.
func (l *link) publish(ctx context.Context, topic string, data []byte) error {
	payload, err := (&mxp.EventPayload{Topic: topic, Data: data}).AppendPayload(nil)
	if err != nil {
		return &Error{Code: CodeInvalidArgument, Message: err.Error(), Err: err}
	}
	id, trace := requestIDs(ctx, l.newID)
	return l.write(ctx, &mxp.Frame{Type: mxp.TypeEvent, MessageID: id, TraceID: trace, Payload: payload})
}

// openStream opens a stream to target with an opening request in data.
func (l *link) openStream(ctx context.Context, target mxp.AgentID, kind mxp.StreamKind, data []byte) (*ClientStream, error) {
	msgID, trace := requestIDs(ctx, l.newID)
	s := &ClientStream{l: l, id: mxp.NewStreamID(), target: target, msgID: msgID, trace: trace,
		chunkInbox: newChunkInbox(DefaultClientStreamBuffer), ended: make(chan struct{})}
	payload, err := (&mxp.StreamOpenPayload{StreamID: s.id, Target: target, Kind: kind, Data: data}).AppendPayload(nil)
	if err != nil {
		return nil, &Error{Code: CodeInvalidArgument, Message: err.Error(), Err: err}
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, l.closedErr()
	}
	l.streams[s.id] = s
	l.mu.Unlock()
	// The mesh answers a StreamOpen with a Response once the target accepted the stream,
	// or an Error (unreachable, ...). Chunks that arrive meanwhile are already routed.
	if _, err := l.roundTrip(ctx, &mxp.Frame{Type: mxp.TypeStreamOpen, MessageID: s.msgID, TraceID: s.trace, Payload: payload}); err != nil {
		l.dropClientStream(s.id)
		s.fail(err)
		return nil, err
	}
	return s, nil
}

// Reserved event topics the edge handles itself (docs/protocol.md, events).
const (
	topicSubscribe   = "_mxp.subscribe"
	topicUnsubscribe = "_mxp.unsubscribe"
)

// subscribe asks the edge to deliver Events whose topic matches pattern ("*" matches one
// token, a final ">" one or more), and waits until the subscription is live.
func (l *link) subscribe(ctx context.Context, topic, pattern string) error {
	payload, err := (&mxp.EventPayload{Topic: topic, Data: []byte(pattern)}).AppendPayload(nil)
	if err != nil {
		return err
	}
	_, err = l.roundTrip(ctx, &mxp.Frame{Type: mxp.TypeEvent, Flags: mxp.FlagRequiresAck, MessageID: l.newID(), TraceID: traceFor(ctx), Payload: payload})
	return err
}

func (l *link) clientStream(id mxp.StreamID) *ClientStream {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.streams[id]
}

func (l *link) dropClientStream(id mxp.StreamID) {
	l.mu.Lock()
	delete(l.streams, id)
	l.mu.Unlock()
}

// failStreamByMessage ends the client stream opened with f's message id, if any, with
// the Error f carries (the mesh refusing the StreamOpen).
func (l *link) failStreamByMessage(f mxp.Frame) bool {
	l.mu.Lock()
	var found *ClientStream
	for id, s := range l.streams {
		if s.msgID == f.MessageID {
			found = s
			delete(l.streams, id)
			break
		}
	}
	l.mu.Unlock()
	if found == nil {
		return false
	}
	found.fail(remoteError(f.Payload))
	return true
}

// ClientStream is a stream the agent opened to another agent or service (see
// Agent.OpenStream): Send writes chunks, Recv reads the peer's chunks until io.EOF (the
// peer ended the stream) or the peer's error, Close ends it from this side.
type ClientStream struct {
	l      *link
	id     mxp.StreamID
	target mxp.AgentID
	msgID  uint64
	trace  uint64

	chunkInbox               // err nil: a clean end
	ended      chan struct{} // closed when the stream ends
}

// ID returns the stream id.
func (s *ClientStream) ID() string { return s.id.String() }

// Send sends one chunk to the peer.
func (s *ClientStream) Send(ctx context.Context, chunk []byte) error {
	if err := s.endErr(); err != nil {
		return err
	}
	payload, err := (&mxp.StreamChunkPayload{StreamID: s.id, Data: chunk}).AppendPayload(make([]byte, 0, 16+len(chunk)))
	if err != nil {
		return err
	}
	return s.l.write(ctx, &mxp.Frame{Type: mxp.TypeStreamChunk, MessageID: s.msgID, TraceID: s.trace, Payload: payload})
}

// Recv returns the peer's next chunk; io.EOF once the peer closed the stream cleanly and
// every chunk was read; the peer's error (see CodeOf) if it failed.
func (s *ClientStream) Recv(ctx context.Context) ([]byte, error) { return s.recv(ctx) }

// Close ends the stream for both sides: the peer's handler sees the end (io.EOF from its
// Recv) and no more chunks are delivered here — not even those already buffered: every
// Recv after Close returns CodeCanceled. A stream is over when either side closes it; to
// read everything the peer sends, Recv until io.EOF instead of closing. Close after the
// stream ended is a no-op.
func (s *ClientStream) Close(ctx context.Context) error {
	s.l.dropClientStream(s.id)
	s.mu.Lock()
	ended := s.closeLocked(Errorf(CodeCanceled, "stream closed by the agent"))
	if ended {
		close(s.ended)
		for range s.in { // the chunks that arrived before the close: Close promises none
		}
	}
	s.mu.Unlock()
	if !ended {
		return nil
	}
	payload, err := (&mxp.StreamClosePayload{StreamID: s.id}).AppendPayload(nil)
	if err != nil {
		return err
	}
	return s.l.write(ctx, &mxp.Frame{Type: mxp.TypeStreamClose, MessageID: s.msgID, TraceID: s.trace, Payload: payload})
}

func (s *ClientStream) endErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed && s.err != nil {
		return s.err
	}
	return nil
}

// push delivers a chunk from the peer. A reader that falls DefaultClientStreamBuffer
// chunks behind fails the stream (CodeOverloaded) instead of stalling the connection.
func (s *ClientStream) push(ctx context.Context, chunk []byte) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	select {
	case s.in <- chunk:
		s.mu.Unlock()
		return
	default:
	}
	s.mu.Unlock()
	err := Errorf(CodeOverloaded, "stream %s: the agent is not reading its chunks", s.id)
	s.fail(err)
	s.l.dropClientStream(s.id)
	ep := errorPayload(err)
	if payload, perr := (&mxp.StreamClosePayload{StreamID: s.id, Error: &ep}).AppendPayload(nil); perr == nil {
		_ = s.l.write(ctx, &mxp.Frame{Type: mxp.TypeStreamClose, MessageID: s.msgID, TraceID: s.trace, Payload: payload})
	}
}

// fail ends the stream: err nil is a clean end. Only the first end counts.
func (s *ClientStream) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closeLocked(err) {
		close(s.ended)
	}
}

var errNotConnected = errors.New("agent: not connected to the mesh")
