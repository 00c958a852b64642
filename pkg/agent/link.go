package agent

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// FrameConn moves whole MXP frames between an agent and its edge. The secure MXP
// connection implements it; tests use an in-memory pipe. Receive's payload may be
// reused by the next Receive; Send must be safe for concurrent use.
type FrameConn interface {
	Send(ctx context.Context, f *mxp.Frame) error
	Receive(ctx context.Context) (mxp.Frame, error)
	Close() error
}

// awaiter is implemented by a FrameConn whose transport can probe the peer while an answer
// is owed (*mxp.Conn): a request's roundTrip brackets its wait with Await and EndAwait,
// so an edge that dies holding the request fails it within about the transport's
// DeadPeerTimeout (CodeUnreachable) instead of at the request's deadline.
type awaiter interface {
	Await()
	EndAwait()
}

// DefaultInboundBuffer is how many decoded inbound messages a link holds for the agent.
const DefaultInboundBuffer = 256

// ErrLinkClosed is returned by operations on a closed connection.
var ErrLinkClosed = errors.New("agent: connection closed")

// link is the agent's side of the MXP conversation over a FrameConn: it correlates the
// Responses and Errors to the agent's own requests by message id, decodes the messages
// addressed to the agent into Inbound values, and encodes the agent's replies. It
// implements meshConn.
type link struct {
	fc   FrameConn
	self mxp.AgentID
	log  *slog.Logger

	nextID atomic.Uint64

	mu      sync.Mutex
	pending map[uint64]chan mxp.Frame // our requests waiting for their answer
	streams map[mxp.StreamID]*ClientStream
	closed  bool
	err     error // why the read loop stopped

	inbound chan Inbound
	done    chan struct{} // closed when the read loop stops
	quit    chan struct{} // closed by Close
	quitMu  sync.Once

	malformed atomic.Uint64 // inbound frames we could not use
}

func newLink(fc FrameConn, self mxp.AgentID, log *slog.Logger) *link {
	l := &link{
		fc: fc, self: self, log: log,
		pending: map[uint64]chan mxp.Frame{}, streams: map[mxp.StreamID]*ClientStream{},
		inbound: make(chan Inbound, DefaultInboundBuffer), done: make(chan struct{}), quit: make(chan struct{}),
	}
	var seed [8]byte
	_, _ = rand.Read(seed[:])
	l.nextID.Store(binary.LittleEndian.Uint64(seed[:]) >> 1) // ids need only be unique per connection
	go l.readLoop()
	return l
}

func (l *link) newID() uint64 {
	for {
		if id := l.nextID.Add(1); id != 0 {
			return id
		}
	}
}

// traceFor returns the trace id a request from ctx should carry: the handler's, so a
// call made while serving a call continues its trace, or a new one.
func traceFor(ctx context.Context) uint64 {
	if m, ok := MetaFrom(ctx); ok && m.TraceID != 0 {
		return m.TraceID
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:]) | 1
}

// write encodes and sends one frame.
func (l *link) write(ctx context.Context, f *mxp.Frame) error {
	select {
	case <-l.done:
		return l.closedErr()
	default:
	}
	return l.fc.Send(ctx, f)
}

func (l *link) closedErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return fmt.Errorf("%w: %w", ErrLinkClosed, l.err)
	}
	return ErrLinkClosed
}

// request sends a frame and waits for the Response or Error with its message id. An Error
// frame comes back as *mxp.RemoteError (see CodeOf).
func (l *link) request(ctx context.Context, typ mxp.MessageType, flags mxp.Flags, payload []byte) (mxp.Frame, error) {
	return l.roundTrip(ctx, &mxp.Frame{Type: typ, Flags: flags, MessageID: l.newID(), TraceID: traceFor(ctx), Payload: payload})
}

// roundTrip sends f and waits for the frame that answers its message id: a Response, an
// Error (returned as an error) or, for a frame with FlagRequiresAck that gets no Response,
// an Ack.
func (l *link) roundTrip(ctx context.Context, f *mxp.Frame) (mxp.Frame, error) {
	id := f.MessageID
	ch := make(chan mxp.Frame, 1)
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return mxp.Frame{}, l.closedErr()
	}
	l.pending[id] = ch
	l.mu.Unlock()
	if a, ok := l.fc.(awaiter); ok {
		a.Await()
		defer a.EndAwait()
	}
	defer func() {
		l.mu.Lock()
		delete(l.pending, id)
		l.mu.Unlock()
	}()
	if err := l.write(ctx, f); err != nil {
		return mxp.Frame{}, err
	}
	select {
	case r := <-ch:
		if r.Type == mxp.TypeError {
			return r, remoteError(r.Payload)
		}
		return r, nil
	case <-ctx.Done():
		return mxp.Frame{}, ctx.Err()
	case <-l.done:
		return mxp.Frame{}, l.closedErr()
	}
}

// remoteError turns an Error payload into an error; a payload that does not parse is
// reported as such rather than lost.
func remoteError(payload []byte) error {
	ep, err := mxp.DecodeErrorPayload(payload)
	if err != nil {
		return &mxp.RemoteError{Code: mxp.CodeInvalidPayload, Message: "unreadable Error payload: " + err.Error()}
	}
	return ep.Err()
}

// readLoop reads frames until the connection fails or is closed.
func (l *link) readLoop() {
	defer close(l.done)
	ctx := context.Background()
	for {
		f, err := l.fc.Receive(ctx)
		if err != nil {
			l.mu.Lock()
			l.err = err
			l.closed = true
			streams := l.streams
			l.streams = map[mxp.StreamID]*ClientStream{}
			l.mu.Unlock()
			for _, s := range streams {
				s.fail(fmt.Errorf("%w: %w", ErrLinkClosed, err))
			}
			close(l.inbound)
			return
		}
		f.Payload = append([]byte(nil), f.Payload...) // the FrameConn may reuse its buffer
		l.handleFrame(ctx, f)
	}
}

func (l *link) handleFrame(ctx context.Context, f mxp.Frame) {
	switch f.Type {
	case mxp.TypeResponse, mxp.TypeError, mxp.TypeAck:
		l.mu.Lock()
		ch := l.pending[f.MessageID]
		if ch != nil {
			delete(l.pending, f.MessageID) // each request is answered once
		}
		l.mu.Unlock()
		if ch != nil {
			ch <- f // buffered
			return
		}
		if f.Type == mxp.TypeAck {
			return // an Ack for a frame whose Response already came, or that awaits none
		}
		if f.Type == mxp.TypeError && l.failStreamByMessage(f) {
			return
		}
		l.malformed.Add(1)
		l.log.Debug("agent: answer to no pending request", "type", f.Type.String(), "message_id", f.MessageID)
	case mxp.TypeCall:
		p, err := mxp.DecodeCall(f.Payload)
		if err != nil {
			l.refuse(ctx, f, err)
			return
		}
		in := Inbound{Meta: Meta{Kind: KindCall, MessageID: f.MessageID, TraceID: f.TraceID, From: callerID(p.Target, l.self)}, Payload: p.Data}
		if p.TimeoutSeconds > 0 {
			in.Deadline = time.Now().Add(time.Duration(p.TimeoutSeconds) * time.Second)
		}
		l.deliver(in)
	case mxp.TypeEvent:
		p, err := mxp.DecodeEvent(f.Payload)
		if err != nil {
			l.malformed.Add(1) // events get no reply
			return
		}
		l.deliver(Inbound{Meta: Meta{Kind: KindEvent, MessageID: f.MessageID, TraceID: f.TraceID, Topic: p.Topic}, Payload: p.Data})
	case mxp.TypeStreamOpen:
		p, err := mxp.DecodeStreamOpen(f.Payload)
		if err != nil {
			l.refuse(ctx, f, err)
			return
		}
		l.deliver(Inbound{Meta: Meta{Kind: KindStreamOpen, MessageID: f.MessageID, TraceID: f.TraceID,
			From: callerID(p.Target, l.self), StreamID: p.StreamID.String()}, Payload: p.Data})
	case mxp.TypeStreamChunk:
		p, err := mxp.DecodeStreamChunk(f.Payload)
		if err != nil {
			l.refuse(ctx, f, err)
			return
		}
		if s := l.clientStream(p.StreamID); s != nil {
			s.push(ctx, p.Data)
			return
		}
		l.deliver(Inbound{Meta: Meta{Kind: KindStreamChunk, MessageID: f.MessageID, TraceID: f.TraceID, StreamID: p.StreamID.String()}, Payload: p.Data})
	case mxp.TypeStreamClose:
		p, err := mxp.DecodeStreamClose(f.Payload)
		if err != nil {
			l.refuse(ctx, f, err)
			return
		}
		if s := l.clientStream(p.StreamID); s != nil {
			l.dropClientStream(p.StreamID)
			if p.Error != nil {
				s.fail(p.Error.Err())
			} else {
				s.fail(nil)
			}
			return
		}
		l.deliver(Inbound{Meta: Meta{Kind: KindStreamClose, MessageID: f.MessageID, TraceID: f.TraceID, StreamID: p.StreamID.String()}})
	default: // registry traffic is for the mesh, not for agents
		l.refuse(ctx, f, Errorf(CodeInvalidArgument, "an agent does not accept %s frames", f.Type))
	}
}

// callerID is the caller named in a delivered Call or StreamOpen. The edge puts the
// caller's id in the target field of what it delivers; when the field holds the agent's
// own id, the caller is unknown.
func callerID(id, self mxp.AgentID) string {
	if id.IsZero() || id == self {
		return ""
	}
	return id.String()
}

// deliver queues a decoded message for Recv. It blocks while the agent is behind, which
// pushes back on the connection rather than growing memory.
func (l *link) deliver(in Inbound) {
	select {
	case l.inbound <- in:
	case <-l.quit:
	}
}

// refuse answers a frame the agent cannot use with an Error frame carrying its message id.
func (l *link) refuse(ctx context.Context, f mxp.Frame, cause error) {
	l.malformed.Add(1)
	ep := mxp.ErrorPayload{Error: cause.Error(), Code: mxp.ErrorCode(CodeOf(cause))}
	l.sendError(ctx, f.MessageID, f.TraceID, ep)
}

func (l *link) sendError(ctx context.Context, id, trace uint64, ep mxp.ErrorPayload) {
	payload, err := ep.AppendPayload(nil)
	if err != nil {
		l.log.Warn("agent: cannot encode an Error payload", "error", err)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, DefaultSendTimeout)
	defer cancel()
	if err := l.write(ctx, &mxp.Frame{Type: mxp.TypeError, MessageID: id, TraceID: trace, Payload: payload}); err != nil {
		l.log.Debug("agent: Error frame not sent", "message_id", id, "error", err)
	}
}

// Recv returns the next message for the agent (meshConn).
func (l *link) Recv(ctx context.Context) (Inbound, error) {
	select {
	case in, ok := <-l.inbound:
		if !ok {
			return Inbound{}, l.closedErr()
		}
		return in, nil
	case <-ctx.Done():
		return Inbound{}, ctx.Err()
	}
}

// Send encodes a reply or stream message (meshConn).
func (l *link) Send(ctx context.Context, out Outbound) error {
	f := &mxp.Frame{MessageID: out.MessageID, TraceID: out.TraceID}
	var err error
	switch out.Kind {
	case KindResponse:
		f.Type, f.Payload = mxp.TypeResponse, out.Payload
	case KindError:
		ep := errorPayload(out.Err)
		if out.StreamID != "" {
			f.Type = mxp.TypeStreamClose
			f.Payload, err = streamClose(out.StreamID, &ep)
		} else {
			f.Type = mxp.TypeError
			f.Payload, err = ep.AppendPayload(nil)
		}
	case KindStreamChunk:
		var sid mxp.StreamID
		if sid, err = mxp.ParseStreamID(out.StreamID); err == nil {
			f.Type = mxp.TypeStreamChunk
			f.Payload, err = (&mxp.StreamChunkPayload{StreamID: sid, Data: out.Payload}).AppendPayload(nil)
		}
	case KindStreamClose:
		f.Type = mxp.TypeStreamClose
		f.Payload, err = streamClose(out.StreamID, nil)
	default:
		err = fmt.Errorf("agent: cannot send a %s", out.Kind)
	}
	if err != nil {
		return err
	}
	return l.write(ctx, f)
}

func errorPayload(e *Error) mxp.ErrorPayload {
	if e == nil {
		e = &Error{Code: CodeInternal, Message: "unknown error"}
	}
	msg := e.Message
	if msg == "" {
		msg = string(e.Code)
	}
	return mxp.ErrorPayload{Error: msg, Code: mxp.ErrorCode(e.Code)}
}

func streamClose(id string, ep *mxp.ErrorPayload) ([]byte, error) {
	sid, err := mxp.ParseStreamID(id)
	if err != nil {
		return nil, err
	}
	return (&mxp.StreamClosePayload{StreamID: sid, Error: ep}).AppendPayload(nil)
}

// Close closes the connection; the read loop ends and pending requests fail.
func (l *link) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.quitMu.Do(func() { close(l.quit) })
	err := l.fc.Close()
	<-l.done
	return err
}
