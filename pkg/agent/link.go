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

// FrameConn moves whole MXP frames between an agent and its edge: the secure MXP
// connection (*mxp.Conn), the plaintext one of DialPlaintext, or an in-memory pipe in
// tests. It is mxp.FrameConn: RunConn runs mxp.Conn's correlator over one that is not an
// *mxp.Conn already.
type FrameConn = mxp.FrameConn

// ErrLinkClosed is returned by operations on a closed connection.
var ErrLinkClosed = errors.New("agent: connection closed")

// link is the agent's side of the MXP conversation over an mxp.Conn, which correlates the
// answers to the agent's own requests by message id (the one correlator, mxp.Conn.Call):
// the link decodes the messages addressed to the agent into Inbound values (Recv), routes
// the chunks of the streams the agent opened, and encodes the agent's replies. Recv reads
// the connection on its caller's goroutine: no goroutine of the link's own stands between
// the socket and the dispatcher. It implements meshConn.
type link struct {
	c    *mxp.Conn
	self mxp.AgentID
	log  *slog.Logger

	mu      sync.Mutex
	streams map[mxp.StreamID]*ClientStream
	closed  bool
	err     error // why the connection ended

	malformed atomic.Uint64 // inbound frames we could not use
}

// newLink runs a link over fc (an *mxp.Conn as it is; any other FrameConn under
// mxp.NewConn).
func newLink(fc FrameConn, self mxp.AgentID, log *slog.Logger) *link {
	c, ok := fc.(*mxp.Conn)
	if !ok {
		c = mxp.NewConn(fc, 0)
	}
	return &link{c: c, self: self, log: log, streams: map[mxp.StreamID]*ClientStream{}}
}

func (l *link) newID() uint64 { return l.c.NextID() }

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

// write sends one frame.
func (l *link) write(ctx context.Context, f *mxp.Frame) error {
	if err := l.c.Send(ctx, f); err != nil {
		return l.connErr(ctx, err)
	}
	return nil
}

// connErr types an error of the connection: once it closed, ErrLinkClosed with the cause
// (CodeUnreachable when the edge stopped answering); other errors as they are.
func (l *link) connErr(ctx context.Context, err error) error {
	if ctx.Err() != nil || errors.Is(err, ErrLinkClosed) {
		return err
	}
	var re *mxp.RemoteError
	if errors.As(err, &re) {
		return err
	}
	select {
	case <-l.c.Done():
		l.end(err)
		return l.closedErr()
	default:
		return err
	}
}

func (l *link) closedErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil && !errors.Is(l.err, mxp.ErrConnClosed) || l.err != nil && mxp.ErrorCodeFor(l.err) == mxp.CodeUnreachable {
		return fmt.Errorf("%w: %w", ErrLinkClosed, l.err)
	}
	return ErrLinkClosed
}

// end records why the connection ended (the first cause counts) and fails the streams
// the agent opened.
func (l *link) end(cause error) {
	l.mu.Lock()
	if l.err == nil {
		l.err = cause
	}
	l.closed = true
	streams := l.streams
	l.streams = map[mxp.StreamID]*ClientStream{}
	l.mu.Unlock()
	for _, s := range streams {
		s.fail(fmt.Errorf("%w: %w", ErrLinkClosed, cause))
	}
}

// request sends a frame and waits for the Response or Error with its message id. An Error
// frame comes back as *mxp.RemoteError (see CodeOf). Its ids are requestIDs': a traced
// request's message id comes from its span (odds 2^-64 that it is one already in flight,
// which mxp.Conn refuses).
func (l *link) request(ctx context.Context, typ mxp.MessageType, flags mxp.Flags, payload []byte) (mxp.Frame, error) {
	id, trace := requestIDs(ctx, l.newID)
	return l.roundTrip(ctx, &mxp.Frame{Type: typ, Flags: flags, MessageID: id, TraceID: trace, Payload: payload})
}

// roundTrip sends f and waits for the frame that answers its message id (mxp.Conn.Call):
// a Response, an Error (returned as an error) or, for a frame with FlagRequiresAck that
// gets no Response, an Ack. While it waits the transport probes the edge, so an edge that
// dies holding the request fails it within about the transport's DeadPeerTimeout
// (CodeUnreachable) instead of at the request's deadline.
func (l *link) roundTrip(ctx context.Context, f *mxp.Frame) (mxp.Frame, error) {
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return mxp.Frame{}, l.closedErr()
	}
	r, err := l.c.Call(ctx, f)
	if err != nil {
		return r, l.connErr(ctx, err)
	}
	return r, nil
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

// Recv returns the next message for the agent (meshConn). It reads the connection on the
// caller's goroutine (mxp.Conn.Receive) and deals with what is not for the agent's
// handlers itself: chunks of the streams the agent opened, refusals of its StreamOpens,
// frames it cannot use (answered with an Error). Contract: one caller at a time.
func (l *link) Recv(ctx context.Context) (Inbound, error) {
	for {
		f, err := l.c.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return Inbound{}, ctx.Err()
			}
			l.end(err)
			return Inbound{}, l.closedErr()
		}
		if in, ok := l.handleFrame(ctx, f); ok {
			return in, nil
		}
	}
}

// handleFrame decodes f, a frame that answers no pending request: a message for the
// agent's handlers is returned (ok); the rest is dealt with here.
func (l *link) handleFrame(ctx context.Context, f mxp.Frame) (Inbound, bool) {
	switch f.Type {
	case mxp.TypeResponse, mxp.TypeError, mxp.TypeAck:
		// mxp.Conn delivered the answers to pending requests; this one answers none.
		if f.Type == mxp.TypeError && l.failStreamByMessage(f) {
			return Inbound{}, false
		}
		if f.Type == mxp.TypeError { // a refused chunk of a stream the agent serves: the dispatcher's
			return Inbound{Meta: Meta{Kind: KindError, MessageID: f.MessageID, TraceID: f.TraceID}, Payload: f.Payload}, true
		}
		l.malformed.Add(1)
		l.log.Debug("agent: answer to no pending request", append(logIDs(f.TraceID, f.MessageID), "type", f.Type.String())...)
	case mxp.TypeCall:
		p, err := mxp.DecodeCall(f.Payload)
		if err != nil {
			l.refuse(ctx, f, err)
			return Inbound{}, false
		}
		call := Inbound{Meta: Meta{Kind: KindCall, MessageID: f.MessageID, TraceID: f.TraceID, From: callerID(p.Target, l.self)}, Payload: p.Data}
		if p.TimeoutSeconds > 0 {
			call.Deadline = time.Now().Add(time.Duration(p.TimeoutSeconds) * time.Second)
		}
		return call, true
	case mxp.TypeEvent:
		p, err := mxp.DecodeEvent(f.Payload)
		if err != nil {
			l.malformed.Add(1) // events get no reply
			return Inbound{}, false
		}
		return Inbound{Meta: Meta{Kind: KindEvent, MessageID: f.MessageID, TraceID: f.TraceID, Topic: p.Topic}, Payload: p.Data}, true
	case mxp.TypeStreamOpen:
		p, err := mxp.DecodeStreamOpen(f.Payload)
		if err != nil {
			l.refuse(ctx, f, err)
			return Inbound{}, false
		}
		return Inbound{Meta: Meta{Kind: KindStreamOpen, MessageID: f.MessageID, TraceID: f.TraceID,
			From: callerID(p.Target, l.self), StreamID: p.StreamID.String()}, Payload: p.Data}, true
	case mxp.TypeStreamChunk:
		p, err := mxp.DecodeStreamChunk(f.Payload)
		if err != nil {
			l.refuse(ctx, f, err)
			return Inbound{}, false
		}
		if s := l.clientStream(p.StreamID); s != nil {
			s.push(ctx, p.Data)
			return Inbound{}, false
		}
		return Inbound{Meta: Meta{Kind: KindStreamChunk, MessageID: f.MessageID, TraceID: f.TraceID, StreamID: p.StreamID.String()}, Payload: p.Data}, true
	case mxp.TypeStreamClose:
		p, err := mxp.DecodeStreamClose(f.Payload)
		if err != nil {
			l.refuse(ctx, f, err)
			return Inbound{}, false
		}
		if s := l.clientStream(p.StreamID); s != nil {
			l.dropClientStream(p.StreamID)
			if p.Error != nil {
				s.fail(p.Error.Err())
			} else {
				s.fail(nil)
			}
			return Inbound{}, false
		}
		return Inbound{Meta: Meta{Kind: KindStreamClose, MessageID: f.MessageID, TraceID: f.TraceID, StreamID: p.StreamID.String()}}, true
	default: // registry traffic is for the mesh, not for agents
		l.refuse(ctx, f, Errorf(CodeInvalidArgument, "an agent does not accept %s frames", f.Type))
	}
	return Inbound{}, false
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
		l.log.Debug("agent: Error frame not sent", append(logIDs(trace, id), "error", err)...)
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
	return mxp.ErrorPayload{Error: msg, Code: e.Code}
}

func streamClose(id string, ep *mxp.ErrorPayload) ([]byte, error) {
	sid, err := mxp.ParseStreamID(id)
	if err != nil {
		return nil, err
	}
	return (&mxp.StreamClosePayload{StreamID: sid, Error: ep}).AppendPayload(nil)
}

// Close closes the connection: pending requests fail, and so do the streams the agent
// opened.
func (l *link) Close() error {
	err := l.c.Close()
	l.end(ErrLinkClosed)
	return err
}
