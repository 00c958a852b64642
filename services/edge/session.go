package edge

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/mxp"
	"github.com/mxp-mesh/mesh/pkg/mxp/transport"
)

// inFrame is one received message waiting in a session's queue.
type inFrame struct {
	raw []byte
	at  time.Time
}

// carried is an agent registered over a session.
type carried struct {
	sub       *nats.Subscription
	confirmed bool // the registry accepted the registration
	since     time.Time
	src       netip.Addr // the source address charged for it (Edge.perSource)
}

// session is the edge's state for one connection: the agents it registered, the Calls
// delivered to it, its streams and topic subscriptions. Frames of one session are handled
// in order by its loop; Calls and registry requests are answered asynchronously.
type session struct {
	e      *Edge
	peer   Peer
	queue  *frameQueue // nil when the transport gives the peer a reader of its own
	ctx    context.Context
	cancel context.CancelFunc
	nextID atomic.Uint64 // ids of the frames the edge originates towards the peer

	inflight   atomic.Int64 // requests of the peer waiting on the bus
	delivering atomic.Int64 // calls being handed to a peer whose Send may block
	deliveries deliveryQueue
	later      batchPeer   // the peer, when it can queue frames for one flush (nil otherwise)
	try        trySendPeer // the peer, when it can send without waiting (nil otherwise)
	await      awaitPeer   // the peer, when its transport probes it while Calls are owed (nil otherwise)
	closeMu    sync.Mutex  // held while close runs; later callers wait for it, as with a sync.Once
	closed     bool        // guarded by closeMu

	mu     sync.Mutex
	agents map[mxp.AgentID]*carried
	order  []mxp.AgentID // registration order; the first is the caller identity
	// callerHdr is the value of the bus header naming the caller: {the first confirmed
	// agent's id}, nil when there is none. It is rebuilt when the agents change (see
	// updateCallerLocked) and shared, read-only, by every message the session publishes.
	callerHdr []string
	peerHdr   []string // {peer.ID()}, shared the same way
	pending   map[uint64]delivery
	streams   map[mxp.StreamID]*stream
	subs      map[string]*nats.Subscription // topic pattern → subscription
	events    chan *nats.Msg
	closeErr  error
}

func newSession(e *Edge, p Peer) *session {
	s := &session{
		e:       e,
		peer:    p,
		agents:  map[mxp.AgentID]*carried{},
		pending: map[uint64]delivery{},
		streams: map[mxp.StreamID]*stream{},
		subs:    map[string]*nats.Subscription{},
	}
	if !dedicatedReader(p) {
		s.queue = newFrameQueue(e.cfg.Load().Limits.QueueFrames)
	}
	s.peerHdr = []string{p.ID()}
	s.later, _ = p.(batchPeer)
	s.try, _ = p.(trySendPeer)
	s.await, _ = p.(awaitPeer)
	s.ctx, s.cancel = context.WithCancel(e.ctx)
	// Ids the edge originates start high so that they stand apart from the peer's own.
	s.nextID.Store(1 << 63)
	return s
}

// loop handles the session's queued frames in arrival order until the session closes.
func (s *session) loop() {
	for {
		in, ok := s.queue.pop(s.ctx)
		if !ok {
			return
		}
		s.handle(in)
		s.queue.done()
	}
}

// dedicatedReader reports whether the transport calls Handler.Frame for p on a goroutine
// of p's own (the secure transport does); the session then handles frames on it, in
// order, and blocking there pushes back on that peer alone.
func dedicatedReader(p Peer) bool {
	d, ok := p.(interface{ DedicatedReader() bool })
	return ok && d.DedicatedReader()
}

// handle decodes and routes one frame.
func (s *session) handle(in inFrame) {
	f, n, err := mxp.Decode(in.raw)
	if err != nil {
		s.reject(peekID(in.raw), peekType(in.raw), mxp.ErrorCodeFor(err), err.Error())
		return
	}
	if n != len(in.raw) {
		s.reject(f.MessageID, f.Type.String(), mxp.CodeInvalidFrame,
			fmt.Sprintf("%d bytes after the frame; one frame per message", len(in.raw)-n))
		return
	}
	if f.Flags.Has(mxp.FlagCompressed) {
		s.refuseCompressed(f)
		return
	}
	switch f.Type {
	case mxp.TypeAgentRegister:
		s.register(f, in.at)
	case mxp.TypeAgentHeartbeat:
		s.heartbeat(f, in.at)
	case mxp.TypeAgentDiscover:
		s.discover(f, in.at)
	case mxp.TypeCall:
		s.call(f, in.at)
	case mxp.TypeResponse, mxp.TypeError:
		s.answer(f)
	case mxp.TypeEvent:
		s.event(f, in.at)
	case mxp.TypeStreamOpen:
		s.streamOpen(f, in.at)
	case mxp.TypeStreamChunk:
		s.streamChunk(f, in.at)
	case mxp.TypeStreamClose:
		s.streamClose(f, in.at)
	case mxp.TypeAck:
		// The edge asks for no Acks; one is harmless and only counted.
		s.count(f.Type, dirIn, outcomeOK)
	}
}

// refuseCompressed answers a frame with the COMPRESSED flag: the profile defines no
// codec, so no payload of any type can be read (docs/protocol.md). The sender gets Error
// invalid_payload (an Error frame is only counted: an Error never answers an Error); when
// the frame answers a Call delivered on this connection, the caller gets the same error
// at once instead of waiting for its deadline.
func (s *session) refuseCompressed(f mxp.Frame) {
	s.e.m.dropped.WithLabelValues(dropCompressed).Inc()
	const text = "the COMPRESSED flag is not supported: the payload profile defines no compression codec"
	s.failDelivery(f.Type, f.MessageID, mxp.CodeInvalidPayload, "the agent answered with a compressed payload: "+text)
	if f.Type == mxp.TypeError {
		s.count(f.Type, dirIn, string(mxp.CodeInvalidPayload))
		return
	}
	s.reject(f.MessageID, f.Type.String(), mxp.CodeInvalidPayload, text)
}

func (s *session) count(t mxp.MessageType, dir, outcome string) {
	if outcome == outcomeOK {
		s.e.m.frameOK(t, dir)
		return
	}
	s.e.m.frames.WithLabelValues(t.String(), dir, outcome).Inc()
}

// reject answers a frame with an Error frame and counts the frame under the error code.
func (s *session) reject(msgID uint64, typeLabel string, code mxp.ErrorCode, msg string) {
	s.e.m.frames.WithLabelValues(typeLabel, dirIn, string(code)).Inc()
	s.sendError(msgID, 0, code, msg)
}

// sendError sends an Error frame {"error","code"} for message msgID.
func (s *session) sendError(msgID, traceID uint64, code mxp.ErrorCode, msg string) {
	p := mxp.ErrorPayload{Error: msg, Code: code}
	body, err := p.AppendPayload(nil)
	if err != nil { // a malformed code from a remote service: say so rather than drop
		p = mxp.ErrorPayload{Error: msg, Code: mxp.CodeInternal}
		body, _ = p.AppendPayload(nil)
	}
	s.send(&mxp.Frame{Type: mxp.TypeError, MessageID: msgID, TraceID: traceID, Payload: body})
}

// sendAck acknowledges f when it asked for it.
func (s *session) sendAck(f *mxp.Frame) {
	if !f.Flags.Has(mxp.FlagRequiresAck) {
		return
	}
	ack := mxp.AckPayload{MessageID: f.MessageID}
	body, _ := ack.AppendPayload(make([]byte, 0, mxp.AckPayloadSize))
	s.send(&mxp.Frame{Type: mxp.TypeAck, MessageID: f.MessageID, TraceID: f.TraceID, Payload: body})
}

var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// send encodes f and sends it to the peer. A Response too large for the transport is
// replaced by an Error too_large, so the caller is never left waiting.
func (s *session) send(f *mxp.Frame) error { return s.sendVia(nil, f) }

// sendVia is send; with batch and a peer that batches, the frame is queued with
// SendLater and the peer added to batch, whose owner flushes it.
func (s *session) sendVia(batch *outBatch, f *mxp.Frame) error { return s.transmit(batch, false, f) }

// trySend is send without waiting for a peer that can (trySendPeer): when the peer has no
// room it returns transport.ErrSendBufferFull, uncounted, and f is not sent; the caller
// sends it later from a goroutine that may wait. A peer without TrySend gets Send.
func (s *session) trySend(f *mxp.Frame) error { return s.transmit(nil, true, f) }

// transmit encodes f and hands it to the peer: with try, by TrySend (see trySend); with
// batch, by SendLater (see sendVia); by Send otherwise.
func (s *session) transmit(batch *outBatch, try bool, f *mxp.Frame) error {
	bp := framePool.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= 256<<10 {
			framePool.Put(bp)
		}
	}()
	b, err := mxp.AppendFrame((*bp)[:0], f)
	if err != nil {
		s.count(f.Type, dirOut, string(mxp.CodeInternal))
		return err
	}
	*bp = b
	if max := s.peer.MaxFrame(); max > 0 && len(b) > max {
		s.count(f.Type, dirOut, string(mxp.CodeTooLarge))
		if f.Type == mxp.TypeError {
			return ErrFrameTooLarge
		}
		s.sendError(f.MessageID, f.TraceID, mxp.CodeTooLarge,
			fmt.Sprintf("%s of %d bytes does not fit this connection's %d-byte limit", f.Type, len(b), max))
		return ErrFrameTooLarge
	}
	switch {
	case try && s.try != nil:
		if err = s.try.TrySend(b); errors.Is(err, transport.ErrSendBufferFull) {
			return err // not sent, not counted: the caller sends it later
		}
	case batch != nil && s.later != nil:
		if err = s.later.SendLater(s.ctx, b); err == nil {
			batch.add(s.later)
		}
	default:
		err = s.peer.Send(s.ctx, b)
	}
	if err != nil {
		s.count(f.Type, dirOut, "send_failed")
		if errors.Is(err, transport.ErrSendBufferFull) { // sent from the read loop, which must not wait
			s.e.m.dropped.WithLabelValues(dropSendBufferFull).Inc()
		}
		return err
	}
	s.count(f.Type, dirOut, outcomeOK)
	return nil
}

// updateCallerLocked recomputes callerHdr after the session's agents or their
// confirmations changed. Contract: s.mu held; called after every change to s.agents,
// s.order or a confirmation; it replaces callerHdr, never writes into it.
func (s *session) updateCallerLocked() {
	for _, id := range s.order {
		if c := s.agents[id]; c != nil && c.confirmed {
			if s.callerHdr == nil || s.callerHdr[0] != id.String() {
				s.callerHdr = []string{id.String()} // a new slice: published headers keep theirs
			}
			return
		}
	}
	s.callerHdr = nil
}

// headers builds the bus headers of a message originated by frame f of this session.
// w3c adds the W3C traceparent of a traced frame, for a message a service reads (the
// registry, inference, event subscribers). A message to an agent goes without it: its
// only reader is the agent's edge, which takes the trace id from Mxp-Trace-Id, and
// tracing.Extract derives the same span context from Mxp-Trace-Id and Mxp-Msg-Id. Left
// out, it also spares the NATS server, which parses every header of a message carrying a
// sampled traceparent (looking for message tracing): about 18 allocations per Call.
func (s *session) headers(f *mxp.Frame, deadline time.Time, w3c bool) nats.Header {
	h := make(nats.Header, 6) // sized for every header set below: no map growth
	bus.SetIDsAndDeadline(h, f.MessageID, f.TraceID, deadline)
	if f.TraceID != 0 && w3c {
		h.Set(bus.HeaderTraceparent, traceparent(f.TraceID, f.MessageID))
	}
	s.mu.Lock()
	caller := s.callerHdr
	s.mu.Unlock()
	if caller != nil {
		h[bus.HeaderAgentID] = caller
	}
	h[bus.HeaderPeer] = s.peerHdr
	return h
}

// traceparent is the W3C traceparent of an MXP message: the trace id and the span id it
// stands for, as package mxp maps them (W3CTraceID, MessageSpanID), sampled.
func traceparent(traceID, msgID uint64) string {
	return formatTraceparent(mxp.W3CTraceID(traceID), mxp.MessageSpanID(traceID, msgID), true)
}

// formatTraceparent formats a W3C traceparent (version 00).
// It is built by hand: this runs for every traced message, and fmt costs several times
// more.
func formatTraceparent(traceID [16]byte, spanID [8]byte, sampled bool) string {
	b := make([]byte, 0, len("00-")+32+len("-")+16+len("-01"))
	b = append(b, "00-"...)
	b = appendHex64(b, binary.BigEndian.Uint64(traceID[:8]))
	b = appendHex64(b, binary.BigEndian.Uint64(traceID[8:]))
	b = append(b, '-')
	b = appendHex64(b, binary.BigEndian.Uint64(spanID[:]))
	if sampled {
		b = append(b, "-01"...)
	} else {
		b = append(b, "-00"...)
	}
	return string(b)
}

// appendHex64 appends v as 16 lower-case hex digits.
func appendHex64(b []byte, v uint64) []byte {
	const digits = "0123456789abcdef"
	for shift := 60; shift >= 0; shift -= 4 {
		b = append(b, digits[v>>uint(shift)&0xf])
	}
	return b
}

// close ends the session: its agents are deregistered, Calls delivered to it are answered
// with unreachable (the agent cannot answer them any more), its streams end with an error on the other side, its subscriptions
// go.
//
// It is guarded by a mutex rather than a sync.Once on purpose: Once.Do's closure lives on
// the caller's stack, and under many concurrent secure calls the race detector reported a
// race between Once reading it and a stackless write by a goroutine that had finished
// (a reused stack whose history the detector keeps, the class of Go issue 42599).
//
// Contract: the only place that sets closed and closeErr (after which deliverCall and
// stream.register add nothing); it empties s.agents (with e.agents and e.perSource),
// s.pending and s.subs, aborts every stream (whose finish removes it from s.streams), and
// answers every pending caller unreachable. Its
// removals from s.pending are not paired with answered: the peer's transport connection
// is ending, and its await count with it.
func (s *session) close(reason error) {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	e := s.e
	s.cancel()
	e.mu.Lock()
	s.mu.Lock()
	s.closeErr = reason
	var ids []mxp.AgentID
	for id, c := range s.agents {
		if e.agents[id] == s {
			delete(e.agents, id)
		}
		e.releaseSourceLocked(c.src)
		if c.sub != nil {
			_ = c.sub.Unsubscribe()
		}
		if c.confirmed {
			ids = append(ids, id)
		}
	}
	s.agents = map[mxp.AgentID]*carried{}
	s.callerHdr = nil
	pending := s.pending
	s.pending = map[uint64]delivery{}
	streams := make([]*stream, 0, len(s.streams))
	for _, st := range s.streams {
		streams = append(streams, st)
	}
	for _, sub := range s.subs {
		_ = sub.Unsubscribe()
		e.m.subscriptions.Dec()
	}
	s.subs = map[string]*nats.Subscription{}
	s.mu.Unlock()
	e.mu.Unlock()
	e.m.agents.Sub(float64(len(ids)))

	if len(pending) > 0 {
		text := "the agent's connection closed before it answered"
		if reason != nil {
			text += ": " + reason.Error()
		}
		for _, d := range pending {
			respondErrorTo(e.nc, d.reply, mxp.CodeUnreachable, text)
			endSpan(d.span, mxp.CodeUnreachable)
		}
		e.m.orphanedCalls.Add(float64(len(pending)))
	}
	for _, st := range streams {
		st.abort(&mxp.ErrorPayload{Error: "the peer disconnected", Code: mxp.CodeUnavailable}, false)
	}
	if len(ids) > 0 {
		e.wg.Go(func() { e.deregister(ids) })
	}
	e.log.Debug("session closed", "peer", s.peer.ID(), "reason", reason, "agents", len(ids))
}
