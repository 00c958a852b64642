package edge

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// A stream has two ends, one on the edge of the peer that opened it and one on the edge
// of the target agent (the same edge when both are connected to it). Each end relays the
// frames of its own peer to the other end over the bus and delivers the other end's
// messages to its peer, in order, through a bounded queue and one writer goroutine.
//
// Backpressure is credit-based: an end may have at most Config.StreamWindow chunks
// in flight to the other; the receiving end returns credit as its peer takes chunks. An
// end out of credit blocks its session's loop (so the peer's transport, in turn, stops
// taking its frames) until credit arrives or StreamIdleTimeout passes.

// Inter-edge stream operations (bus.HeaderStreamOp; the contract is in pkg/common/bus,
// whose AgentStream speaks it too).
const (
	opChunk  = bus.StreamOpChunk
	opCredit = bus.StreamOpCredit
	opClose  = bus.StreamOpClose
	opOpen   = "open" // local only: the StreamOpen the acceptor's writer delivers first
)

// streamKey names one end on an edge: the two ends of a stream between two peers of the
// same edge share its id.
type streamKey struct {
	id     mxp.StreamID
	opener bool
}

// streamItem is one message waiting for delivery to the end's peer.
type streamItem struct {
	op      string
	data    []byte
	traceID uint64
	msgID   uint64 // opOpen: the delivered frame's id when picked from a span (0: the edge's own)
	kind    mxp.StreamKind
	err     *mxp.ErrorPayload
}

type stream struct {
	e      *Edge
	s      *session
	key    streamKey
	target mxp.AgentID   // the target field of the StreamOpen delivered to the peer (see deliveredTarget)
	svc    *serviceRelay // set on a stream opened to a service (stream_service.go); it has no other end

	out   chan streamItem // to the peer; capacity window + 2 (open, close)
	wake  chan struct{}   // credit arrived or the stream ended
	done  chan struct{}   // closed when the end is finished
	last  atomic.Int64    // unix nanos of the last activity
	owed  int             // credit earned by the writer, not yet returned
	state sync.Mutex      // guards remote, credit, ready, finished
	// remote is the other end's subject; empty until the open is accepted.
	remote   string
	credit   int
	ready    bool
	finished bool
}

func (e *Edge) newStream(s *session, key streamKey, target mxp.AgentID) *stream {
	w := e.cfg.Load().StreamWindow
	st := &stream{e: e, s: s, key: key, target: target,
		out: make(chan streamItem, w+2), wake: make(chan struct{}, 1), done: make(chan struct{})}
	st.touch()
	return st
}

func (st *stream) touch() { st.last.Store(time.Now().UnixNano()) }

// localSubject is where the other end sends to this end.
func (st *stream) localSubject() string {
	side := "a"
	if st.key.opener {
		side = "o"
	}
	return bus.EdgeSubject(st.e.id, bus.EdgeVerbStream+"."+side)
}

// register puts the end in the edge's and the session's tables; false if the session
// already has a stream with this id or is at its limit.
// Contract: adds the end to s.streams and e.streams together, under e.mu then s.mu, and
// starts its writer; refused once the session is closed.
func (st *stream) register() (mxp.ErrorCode, string) {
	e, s := st.e, st.s
	e.mu.Lock()
	defer e.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closeErr != nil {
		return mxp.CodeUnavailable, "the connection closed"
	}
	if _, dup := s.streams[st.key.id]; dup {
		return mxp.CodeInvalidPayload, "stream " + st.key.id.String() + " is already open on this connection"
	}
	if len(s.streams) >= e.cfg.Load().Limits.MaxStreams {
		return mxp.CodeRateLimited, fmt.Sprintf("a connection may have at most %d streams open", len(s.streams))
	}
	if _, dup := e.streams[st.key]; dup {
		return mxp.CodeInvalidPayload, "stream id " + st.key.id.String() + " is in use"
	}
	s.streams[st.key.id] = st
	e.streams[st.key] = st
	e.m.streams.Inc()
	e.wg.Go(st.writer)
	return "", ""
}

// finish removes the end from the tables and stops its writer. Idempotent.
// Contract: the only place an end leaves s.streams and e.streams (session.close aborts
// each end, which finishes it).
func (st *stream) finish() {
	st.state.Lock()
	if st.finished {
		st.state.Unlock()
		return
	}
	st.finished = true
	st.state.Unlock()
	e, s := st.e, st.s
	e.mu.Lock()
	if e.streams[st.key] == st {
		delete(e.streams, st.key)
	}
	s.mu.Lock()
	if s.streams[st.key.id] == st {
		delete(s.streams, st.key.id)
	}
	s.mu.Unlock()
	e.mu.Unlock()
	e.m.streams.Dec()
	if st.svc != nil {
		st.svc.stop()
	}
	close(st.done)
	st.signal()
}

func (st *stream) signal() {
	select {
	case st.wake <- struct{}{}:
	default:
	}
}

// publish sends an operation to the other end.
func (st *stream) publish(op string, traceID uint64, data []byte) error {
	st.state.Lock()
	remote := st.remote
	st.state.Unlock()
	if remote == "" {
		return nil
	}
	msg := &nats.Msg{Subject: remote, Header: nats.Header{}, Data: data}
	msg.Header.Set(bus.HeaderStreamID, st.key.id.String())
	msg.Header.Set(bus.HeaderStreamOp, op)
	if traceID != 0 {
		bus.SetTraceID(msg.Header, traceID)
	}
	return st.e.nc.PublishMsg(msg)
}

// abort ends the stream with an error: the other end is told (when it is known) and,
// when deliverLocal, the local peer gets a StreamClose carrying the error.
func (st *stream) abort(ep *mxp.ErrorPayload, deliverLocal bool) {
	body, _ := json.Marshal(ep)
	_ = st.publish(opClose, 0, body)
	if deliverLocal {
		select {
		case st.out <- streamItem{op: opClose, err: ep}:
			return // the writer delivers it, then finishes
		default:
		}
	}
	st.finish()
}

// writer delivers the other end's messages to the peer in order and returns credit.
func (st *stream) writer() {
	window := st.e.cfg.Load().StreamWindow
	batch := max(1, window/4)
	for {
		select {
		case <-st.done:
			return
		case it := <-st.out:
			st.touch()
			switch it.op {
			case opOpen:
				p := mxp.StreamOpenPayload{StreamID: st.key.id, Target: st.target, Kind: it.kind, Data: it.data}
				payload, _ := p.AppendPayload(nil)
				id := it.msgID
				if id == 0 {
					id = st.s.nextID.Add(1)
				}
				st.s.send(&mxp.Frame{Type: mxp.TypeStreamOpen, MessageID: id, TraceID: it.traceID, Payload: payload})
			case opChunk:
				p := mxp.StreamChunkPayload{StreamID: st.key.id, Data: it.data}
				bp := framePool.Get().(*[]byte)
				payload, _ := p.AppendPayload((*bp)[:0])
				err := st.s.send(&mxp.Frame{Type: mxp.TypeStreamChunk, MessageID: st.s.nextID.Add(1), TraceID: it.traceID, Payload: payload})
				*bp = payload[:0]
				framePool.Put(bp)
				if err != nil {
					st.abort(&mxp.ErrorPayload{Error: "the peer cannot take the stream: " + err.Error(), Code: mxp.CodeUnavailable}, false)
					return
				}
				st.owed++
				if st.owed >= batch || len(st.out) == 0 {
					_ = st.publish(opCredit, 0, strconv.AppendInt(nil, int64(st.owed), 10))
					st.owed = 0
				}
			case opClose:
				p := mxp.StreamClosePayload{StreamID: st.key.id, Error: it.err}
				payload, err := p.AppendPayload(nil)
				if err != nil {
					p.Error = &mxp.ErrorPayload{Error: "stream failed", Code: mxp.CodeInternal}
					payload, _ = p.AppendPayload(nil)
				}
				st.s.send(&mxp.Frame{Type: mxp.TypeStreamClose, MessageID: st.s.nextID.Add(1), TraceID: it.traceID, Payload: payload})
				st.finish()
				return
			}
		}
	}
}

// handleStreamMsg takes traffic from the other end of a stream (one subscription per
// edge, so messages of a stream are handled in the order they were published).
func (e *Edge) handleStreamMsg(msg *nats.Msg) {
	opener := strings.HasSuffix(msg.Subject, ".o")
	id, err := mxp.ParseStreamID(msg.Header.Get(bus.HeaderStreamID))
	if err != nil {
		return
	}
	e.mu.Lock()
	st := e.streams[streamKey{id: id, opener: opener}]
	e.mu.Unlock()
	if st == nil {
		return // the end is gone; the other end was or will be told by its own close
	}
	st.touch()
	traceID, _, _ := bus.TraceID(msg.Header)
	switch msg.Header.Get(bus.HeaderStreamOp) {
	case opChunk:
		select {
		case st.out <- streamItem{op: opChunk, data: msg.Data, traceID: traceID}:
		default:
			st.abort(&mxp.ErrorPayload{Error: "the other end sent beyond its credit window", Code: mxp.CodeInternal}, true)
		}
	case opCredit:
		n, err := strconv.Atoi(string(msg.Data))
		if err != nil || n <= 0 {
			return
		}
		st.state.Lock()
		st.credit += n
		st.state.Unlock()
		st.signal()
	case opClose:
		var ep *mxp.ErrorPayload
		if len(msg.Data) > 0 {
			var p mxp.ErrorPayload
			if json.Unmarshal(msg.Data, &p) == nil && p.Code != "" {
				ep = &p
			}
		}
		st.state.Lock()
		st.remote = "" // the other end is gone: nothing more to send it
		st.state.Unlock()
		select {
		case st.out <- streamItem{op: opClose, err: ep, traceID: traceID}:
		default:
			st.finish()
		}
	}
}

// streamOpen opens a stream to the target agent: the target's edge accepts it and
// delivers the StreamOpen; until then, chunks from the opener wait for credit.
func (s *session) streamOpen(f mxp.Frame, arrived time.Time) {
	p, err := mxp.DecodeStreamOpen(f.Payload)
	if err != nil {
		s.reject(f.MessageID, f.Type.String(), mxp.CodeInvalidPayload, err.Error())
		return
	}
	e := s.e
	if _, isService := e.services[p.Target]; isService {
		s.streamOpenService(f, p, arrived)
		return
	}
	s.mu.Lock()
	_, own := s.agents[p.Target]
	s.mu.Unlock()
	if own {
		s.reject(f.MessageID, f.Type.String(), mxp.CodeForbidden, "a connection cannot open a stream to an agent it carries")
		return
	}
	st := e.newStream(s, streamKey{id: p.StreamID, opener: true}, p.Target)
	if code, text := st.register(); code != "" {
		s.reject(f.MessageID, f.Type.String(), code, text)
		return
	}
	if !s.acquire() {
		st.finish()
		s.reject(f.MessageID, f.Type.String(), mxp.CodeRateLimited, "too many requests in flight on this connection")
		return
	}
	deadline := arrived.Add(e.cfg.Load().RegistryTimeout)
	msg := &nats.Msg{Subject: bus.AgentSubject(p.Target.String(), bus.AgentVerbStream), Header: s.headers(&f, deadline, false), Data: p.Data}
	msg.Header.Set(bus.HeaderStreamID, p.StreamID.String())
	msg.Header.Set(bus.HeaderStreamKind, strconv.Itoa(int(p.Kind)))
	msg.Header.Set(bus.HeaderStreamPeer, st.localSubject())
	span := s.startRequestSpan(&f, msg.Subject, msg.Header)
	go func() {
		defer s.release()
		ctx, cancel := context.WithDeadline(s.ctx, deadline)
		reply, err := e.nc.RequestMsgWithContext(ctx, msg)
		cancel()
		if err == nil && bus.ReplyError(reply) == nil && reply.Header.Get(bus.HeaderStreamPeer) != "" {
			endSpan(span, "")
			st.state.Lock()
			st.remote = reply.Header.Get(bus.HeaderStreamPeer)
			st.credit = e.cfg.Load().StreamWindow
			st.ready = true
			st.state.Unlock()
			st.signal()
			s.count(f.Type, dirIn, outcomeOK)
			s.sendAck(&f)
			// A request is answered by a Response with its message id (docs/protocol.md).
			s.send(&mxp.Frame{Type: mxp.TypeResponse, MessageID: f.MessageID, TraceID: f.TraceID})
			e.m.route.WithLabelValues(f.Type.String()).Observe(time.Since(arrived).Seconds())
			return
		}
		st.finish()
		if s.ctx.Err() != nil {
			endSpan(span, mxp.CodeUnavailable)
			return
		}
		if err == nil && bus.ReplyError(reply) == nil {
			s.reject(f.MessageID, f.Type.String(), mxp.CodeInternal, "the target's edge accepted the stream without naming its end")
			endSpan(span, mxp.CodeInternal)
			return
		}
		endSpan(span, s.answerFromBus(&f, reply, err, msg.Subject, nil))
	}()
}

// acceptStream takes a stream opened to an agent this session carries.
func (s *session) acceptStream(target mxp.AgentID, msg *nats.Msg) {
	id, err := mxp.ParseStreamID(msg.Header.Get(bus.HeaderStreamID))
	remote := msg.Header.Get(bus.HeaderStreamPeer)
	kind, kerr := strconv.Atoi(msg.Header.Get(bus.HeaderStreamKind))
	if err != nil || remote == "" || kerr != nil || kind < 0 || kind > 255 {
		respondError(msg, mxp.CodeInvalidPayload, "stream open without a valid id, kind or peer subject")
		return
	}
	st := s.e.newStream(s, streamKey{id: id, opener: false}, s.deliveredTarget(target, msg.Header))
	st.remote, st.credit, st.ready = remote, s.e.cfg.Load().StreamWindow, true
	traceID, _, _ := bus.TraceID(msg.Header)
	// The delivery span covers the edge's taking of the stream, up to its StreamOpen queued
	// for the peer; the frame's id comes from it, so the agent's handler span is its child.
	span := s.startDeliverySpan(msg.Header, target, trace.SpanKindClient)
	st.out <- streamItem{op: opOpen, data: msg.Data, traceID: traceID, msgID: deliveryID(span, traceID), kind: mxp.StreamKind(kind)}
	if code, text := st.register(); code != "" {
		respondError(msg, code, text)
		endSpan(span, code)
		return
	}
	endSpan(span, "")
	r := nats.NewMsg(msg.Reply)
	r.Header.Set(bus.HeaderStreamPeer, st.localSubject())
	if err := msg.RespondMsg(r); err != nil {
		st.finish()
	}
}

// streamChunk relays a chunk to the other end once there is credit for it.
func (s *session) streamChunk(f mxp.Frame, arrived time.Time) {
	p, err := mxp.DecodeStreamChunk(f.Payload)
	if err != nil {
		s.reject(f.MessageID, f.Type.String(), mxp.CodeInvalidPayload, err.Error())
		return
	}
	st := s.stream(p.StreamID)
	if st == nil {
		s.reject(f.MessageID, f.Type.String(), mxp.CodeNotFound, "no open stream "+p.StreamID.String()+" on this connection")
		return
	}
	if st.svc != nil {
		s.reject(f.MessageID, f.Type.String(), mxp.CodeInvalidPayload,
			"stream "+p.StreamID.String()+" is to a service, which takes its request with the StreamOpen and no chunks")
		return
	}
	if code, text := st.waitCredit(s.ctx); code != "" {
		s.reject(f.MessageID, f.Type.String(), code, text)
		return
	}
	st.touch()
	if err := st.publish(opChunk, f.TraceID, p.Data); err != nil {
		code, text := busFailure(err, "the stream")
		s.reject(f.MessageID, f.Type.String(), code, text)
		return
	}
	s.count(f.Type, dirIn, outcomeOK)
	s.sendAck(&f)
	s.e.m.route.WithLabelValues(f.Type.String()).Observe(time.Since(arrived).Seconds())
}

// streamClose ends the stream: the other end gets it after every chunk sent before.
func (s *session) streamClose(f mxp.Frame, arrived time.Time) {
	p, err := mxp.DecodeStreamClose(f.Payload)
	if err != nil {
		s.reject(f.MessageID, f.Type.String(), mxp.CodeInvalidPayload, err.Error())
		return
	}
	st := s.stream(p.StreamID)
	if st == nil {
		s.reject(f.MessageID, f.Type.String(), mxp.CodeNotFound, "no open stream "+p.StreamID.String()+" on this connection")
		return
	}
	if st.svc != nil { // the agent cancels: nothing more is relayed
		st.finish()
		s.count(f.Type, dirIn, outcomeOK)
		s.sendAck(&f)
		s.e.m.route.WithLabelValues(f.Type.String()).Observe(time.Since(arrived).Seconds())
		return
	}
	if code, text := st.waitReady(s.ctx); code != "" {
		st.finish()
		s.reject(f.MessageID, f.Type.String(), code, text)
		return
	}
	var body []byte
	if p.Error != nil {
		body, _ = json.Marshal(p.Error)
	}
	err = st.publish(opClose, f.TraceID, body)
	st.finish()
	if err != nil {
		code, text := busFailure(err, "the stream")
		s.reject(f.MessageID, f.Type.String(), code, text)
		return
	}
	s.count(f.Type, dirIn, outcomeOK)
	s.sendAck(&f)
	s.e.m.route.WithLabelValues(f.Type.String()).Observe(time.Since(arrived).Seconds())
}

func (s *session) stream(id mxp.StreamID) *stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.streams[id]
}

// waitCredit takes one unit of credit, waiting for it at most StreamIdleTimeout.
func (st *stream) waitCredit(ctx context.Context) (mxp.ErrorCode, string) {
	return st.wait(ctx, true)
}

// waitReady waits until the open is accepted.
func (st *stream) waitReady(ctx context.Context) (mxp.ErrorCode, string) {
	return st.wait(ctx, false)
}

func (st *stream) wait(ctx context.Context, takeCredit bool) (mxp.ErrorCode, string) {
	var timer *time.Timer
	for {
		st.state.Lock()
		switch {
		case st.finished:
			st.state.Unlock()
			return mxp.CodeNotFound, "stream " + st.key.id.String() + " has ended"
		case st.ready && st.remote == "":
			st.state.Unlock()
			return mxp.CodeNotFound, "the other end of stream " + st.key.id.String() + " has closed"
		case st.ready && (!takeCredit || st.credit > 0):
			if takeCredit {
				st.credit--
			}
			st.state.Unlock()
			if timer != nil {
				timer.Stop()
			}
			return "", ""
		}
		st.state.Unlock()
		if timer == nil {
			timer = time.NewTimer(st.e.cfg.Load().StreamIdleTimeout)
			defer timer.Stop()
		}
		select {
		case <-st.wake:
		case <-ctx.Done():
			return mxp.CodeUnavailable, "the connection closed"
		case <-timer.C:
			st.abort(&mxp.ErrorPayload{Error: "no credit from the receiver in time", Code: mxp.CodeTimeout}, true)
			return mxp.CodeTimeout, "the stream's receiver took nothing for too long"
		}
	}
}
