package edge

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/mxp"
	"github.com/mxp-mesh/mesh/pkg/mxp/transport"
)

// The callee's side of a Call, in the order it runs: a message on mxp.agent.<id>.call (the
// subscription claim made, feeding e.agentMsgs) → agentWorker → handleAgentMsg: find the
// session carrying the agent (owner) → deliverCall, on the worker for a plaintext peer or
// on the session's delivery goroutine (drainDeliveries) for a secure one, whose Send may
// block: record the delivery in s.pending under an id of the edge's and send the Call →
// the peer's Response or Error frame (session.handle) → answer: publish it to the caller's
// inbox. A delivery also ends by failDelivery (an answer the edge refused), by
// expireDeliveries (the caller's deadline passed) or by session.close (the connection
// ended: every caller gets unreachable).
//
// s.pending invariant: every entry added (deliverCall) is paired with one awaitAnswer, and
// every removal but close's with one answered, so the transport probes a peer exactly while
// it owes answers.

// delivery is a Call handed to the session's peer and waiting for its Response.
type delivery struct {
	reply    string // the caller's bus inbox
	deadline time.Time
	span     trace.Span // the delivery's span (startDeliverySpan); nil when not traced
}

// agentWorker handles calls, probes and stream opens addressed to carried agents.
func (e *Edge) agentWorker() {
	for {
		select {
		case <-e.ctx.Done():
			return
		case msg := <-e.agentMsgs:
			e.handleAgentMsg(msg)
		}
	}
}

// handleAgentMsg routes one message on an agent subject: a probe is answered (the agent is
// here), a Call delivered, a StreamOpen accepted; for an agent not carried here (any
// more), the requester gets unreachable.
// Contract: runs on an agentWorker and never waits on a secure peer's Send. With no Call
// queued for the peer before it, a Call is handed over here when the peer has room
// (TrySend): no goroutine hand-off on the hot path. Otherwise it is queued on
// s.deliveries, counted in s.delivering (at most Limits.MaxInFlight, over it the caller
// gets unavailable) until drainDeliveries has handed it over, in order.
func (e *Edge) handleAgentMsg(msg *nats.Msg) {
	rest := strings.TrimPrefix(msg.Subject, bus.SubjectAgentPrefix)
	idText, verb, _ := strings.Cut(rest, ".")
	id, err := mxp.ParseAgentID(idText)
	if err != nil {
		return
	}
	s := e.owner(id)
	if s == nil {
		if msg.Reply != "" && verb != bus.AgentVerbProbe {
			respondError(msg, mxp.CodeUnreachable, "agent "+idText+" is not connected to this edge")
		}
		return
	}
	switch verb {
	case bus.AgentVerbProbe:
		_ = msg.Respond(nil)
	case bus.AgentVerbCall:
		if s.queue == nil {
			// A secure peer's Send can block on its flow control; never let one slow
			// agent hold up deliveries to the others: when the peer has no room, the
			// session's own goroutine sends.
			if s.try != nil && s.deliveries.idle() && s.deliverCall(id, msg, true) {
				return
			}
			if s.delivering.Add(1) > int64(e.cfg.Load().Limits.MaxInFlight) {
				s.delivering.Add(-1)
				respondError(msg, mxp.CodeUnavailable, "the agent has too many calls being delivered")
				return
			}
			if s.deliveries.push(id, msg) {
				e.wg.Go(s.drainDeliveries)
			}
			return
		}
		s.deliverCall(id, msg, false)
	case bus.AgentVerbStream:
		s.acceptStream(id, msg)
	}
}

// owner returns the session carrying agent id once its registration is confirmed.
func (e *Edge) owner(id mxp.AgentID) *session {
	e.mu.RLock()
	defer e.mu.RUnlock()
	s := e.agents[id]
	if s == nil {
		return nil
	}
	s.mu.Lock()
	c := s.agents[id]
	s.mu.Unlock()
	if c == nil || !c.confirmed {
		return nil
	}
	return s
}

// deliveryQueue holds the Calls from the bus waiting to be handed to a peer whose Send
// may block (the secure transport's flow control). One goroutine per session drains it
// while it is not empty and ends when it is: a burst of Calls to one agent costs one
// goroutine, not one each, and they reach the connection in arrival order instead of
// contending for it (its sends are serialised anyway).
type deliveryQueue struct {
	mu       sync.Mutex
	items    []queuedCall
	head     int
	draining bool
}

type queuedCall struct {
	target mxp.AgentID
	msg    *nats.Msg
}

// push queues a Call; true when no goroutine drains the queue and the caller must start
// one. Contract: draining is true from the push that returns true until the pop that finds
// the queue empty, so at most one drainDeliveries runs per session.
func (q *deliveryQueue) push(target mxp.AgentID, msg *nats.Msg) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == cap(q.items) && q.head > 0 { // full: reuse the taken front first
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	q.items = append(q.items, queuedCall{target, msg})
	if q.draining {
		return false
	}
	q.draining = true
	return true
}

// idle reports whether no Call waits in the queue and no goroutine drains it: a Call
// handed over now does not overtake one that came before it.
func (q *deliveryQueue) idle() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return !q.draining
}

// pop takes the oldest Call; false (and the queue no longer draining) when it is empty.
func (q *deliveryQueue) pop() (queuedCall, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.items) {
		if cap(q.items) > 1024 { // let a burst's large array go
			q.items = nil
		} else {
			q.items = q.items[:0]
		}
		q.head = 0
		q.draining = false
		return queuedCall{}, false
	}
	c := q.items[q.head]
	q.items[q.head] = queuedCall{}
	q.head++
	return c, true
}

// drainDeliveries hands the queued Calls to the peer, in order, until the queue is empty.
// Contract: started only when push returns true; takes one off s.delivering per Call
// handed over.
func (s *session) drainDeliveries() {
	for {
		c, ok := s.deliveries.pop()
		if !ok {
			return
		}
		s.deliverCall(c.target, c.msg, false)
		s.delivering.Add(-1)
	}
}

// deliverCall hands a Call from the bus to the agent's peer. The frame gets an id of the
// edge's (picked from the delivery's span when the edge traces, see tracing.go); the
// peer's Response with that id is published to the caller's inbox. With try,
// the frame goes by trySend: when the peer has no room, deliverCall leaves no trace (no
// delivery recorded, no answer to the caller) and returns false, and the caller queues the
// Call for a goroutine that may wait; it returns true otherwise.
// Contract: adds at most one s.pending entry, with awaitAnswer; when the send fails (or
// finds no room with try) it takes the entry back (with answered) unless answer,
// failDelivery, expireDeliveries or close took it first; on a failure it answers the
// caller. A session already closed answers unreachable and records nothing. Each attempt
// has its own span: one that found no room ends with mxp.delivery=queued.
func (s *session) deliverCall(target mxp.AgentID, msg *nats.Msg, try bool) bool {
	if msg.Reply == "" {
		return true // a Call nobody waits for: nothing to answer
	}
	deadline, ok, _ := bus.Deadline(msg.Header)
	if !ok {
		deadline = time.Now().Add(s.e.cfg.Load().DefaultCallTimeout)
	}
	remaining := time.Until(deadline)
	if remaining <= 0 {
		respondError(msg, mxp.CodeTimeout, "the caller's deadline passed before delivery")
		return true
	}
	traceID, _, _ := bus.TraceID(msg.Header)
	span := s.startDeliverySpan(msg.Header, target, trace.SpanKindClient)
	id := deliveryID(span, traceID)
	s.mu.Lock()
	if s.closeErr != nil {
		s.mu.Unlock()
		respondError(msg, mxp.CodeUnreachable, "the agent's connection closed")
		endSpan(span, mxp.CodeUnreachable)
		return true
	}
	if id == 0 {
		id = s.nextID.Add(1) // untraced
	} else if _, taken := s.pending[id]; taken {
		id = s.nextID.Add(1) // a traced id already waiting (odds 2^-64)
	}
	s.pending[id] = delivery{reply: msg.Reply, deadline: deadline, span: span}
	s.mu.Unlock()
	s.awaitAnswer()

	secs := uint32(math.Ceil(remaining.Seconds()))
	cp := mxp.CallPayload{Target: s.deliveredTarget(target, msg.Header), TimeoutSeconds: secs, Data: msg.Data}
	bp := framePool.Get().(*[]byte)
	payload, _ := cp.AppendPayload((*bp)[:0])
	frame := &mxp.Frame{Type: mxp.TypeCall, MessageID: id, TraceID: traceID, Payload: payload}
	var err error
	if try {
		err = s.trySend(frame)
	} else {
		err = s.send(frame)
	}
	*bp = payload[:0]
	framePool.Put(bp)
	if err != nil {
		s.mu.Lock()
		_, still := s.pending[id]
		delete(s.pending, id)
		s.mu.Unlock()
		if still {
			s.answered()
			if try && errors.Is(err, transport.ErrSendBufferFull) {
				if span != nil {
					span.SetAttributes(attribute.String("mxp.delivery", "queued"))
					span.End()
				}
				return false // the caller queues it
			}
			code := mxp.CodeUnavailable
			if err == ErrFrameTooLarge {
				code = mxp.CodeTooLarge
			}
			respondError(msg, code, "cannot deliver the call to the agent: "+err.Error())
			endSpan(span, code)
		}
	}
	return true
}

// deliveredTarget is what the target field of a Call or StreamOpen delivered to this
// session's peer holds: the caller's agent id (as the caller's edge authenticated it) when
// the peer carries exactly one agent, so it needs no telling which agent is called; the
// called agent's own id otherwise (a connection with several agents, or an anonymous
// caller).
func (s *session) deliveredTarget(target mxp.AgentID, h nats.Header) mxp.AgentID {
	s.mu.Lock()
	n := len(s.agents)
	s.mu.Unlock()
	if n != 1 {
		return target
	}
	text := bus.AgentID(h)
	if text == "" { // an anonymous caller: parsing "" would only build an error
		return target
	}
	caller, err := mxp.ParseAgentID(text)
	if err != nil || caller.IsZero() {
		return target
	}
	return caller
}

// awaitAnswer tells the peer's transport that the peer owes an answer (a Call was handed
// to it), so that it probes a silent peer. Contract: called once per entry added to
// s.pending; answered is called once per entry removed, except by close.
func (s *session) awaitAnswer() {
	if s.await != nil {
		s.await.Await()
	}
}

// answered ends one awaitAnswer.
func (s *session) answered() {
	if s.await != nil {
		s.await.EndAwait()
	}
}

// answersDelivery reports whether msg is a Response or Error to a Call the edge delivered
// on this connection and still waits for. Such a frame is not charged to the connection's
// rate limit: the edge asked for it, the deliveries bound it (max_in_flight per
// connection), and dropping it would leave the caller waiting until its deadline. A busy
// agent answering more Calls per second than rate_per_second would otherwise lose its
// answers once the burst is spent.
func (s *session) answersDelivery(msg []byte) bool {
	if len(msg) < 16 {
		return false
	}
	if t := mxp.MessageType(msg[4]); t != mxp.TypeResponse && t != mxp.TypeError {
		return false
	}
	id := peekID(msg)
	s.mu.Lock()
	_, ok := s.pending[id]
	s.mu.Unlock()
	return ok
}

// answer takes a Response or Error from the peer for a Call delivered to it.
// Contract: removes at most one s.pending entry, paired with answered, and publishes the
// answer to that delivery's caller at most once; an answer to no delivery is refused with
// not_found (an Error is only counted).
func (s *session) answer(f mxp.Frame) {
	s.mu.Lock()
	d, ok := s.pending[f.MessageID]
	delete(s.pending, f.MessageID)
	s.mu.Unlock()
	if ok {
		s.answered()
	}
	if !ok {
		if f.Type == mxp.TypeError {
			s.count(f.Type, dirIn, string(mxp.CodeNotFound)) // never answer an Error with an Error
			return
		}
		s.reject(f.MessageID, f.Type.String(), mxp.CodeNotFound,
			fmt.Sprintf("no call with message id %d is waiting for an answer (expired or never delivered)", f.MessageID))
		return
	}
	var out *nats.Msg
	var code mxp.ErrorCode // the span's outcome: the agent's error code, "" for a Response
	if f.Type == mxp.TypeError {
		ep, err := mxp.DecodeErrorPayload(f.Payload)
		if err != nil {
			ep = mxp.ErrorPayload{Error: "the agent sent a malformed Error payload", Code: mxp.CodeInternal}
		}
		out = errorReply(d.reply, ep.Code, ep.Error)
		code = ep.Code
	} else {
		out = &nats.Msg{Subject: d.reply, Data: f.Payload}
	}
	if err := s.e.nc.PublishMsg(out); err != nil {
		endSpan(d.span, mxp.CodeUnavailable)
		s.reject(f.MessageID, f.Type.String(), mxp.CodeUnavailable, "cannot hand the answer to the bus: "+err.Error())
		return
	}
	endSpan(d.span, code)
	s.count(f.Type, dirIn, outcomeOK)
	s.sendAck(&f)
}

// failDelivery fails the caller of a delivered Call at once with code when t and id name
// an answer to it that the edge refused (compressed, over the size limit, sent as a
// datagram): the caller gets the refusal instead of waiting for its deadline, and the
// delivery is forgotten (a later valid answer is then not_found). It reports whether id
// named a delivery.
// Contract: removes at most one s.pending entry and pairs it with answered, as every
// removal except close does.
func (s *session) failDelivery(t mxp.MessageType, id uint64, code mxp.ErrorCode, text string) bool {
	if t != mxp.TypeResponse && t != mxp.TypeError {
		return false
	}
	s.mu.Lock()
	d, ok := s.pending[id]
	delete(s.pending, id)
	s.mu.Unlock()
	if !ok {
		return false
	}
	s.answered()
	s.e.m.refusedAnswers.WithLabelValues(string(code)).Inc()
	respondErrorTo(s.e.nc, d.reply, code, text)
	endSpan(d.span, code)
	return true
}

// expireDeliveries forgets delivered Calls whose caller's deadline has passed (the caller
// already got timeout).
// Contract: called by the sweep; each entry removed is paired with answered; the caller
// is not answered here (its own edge timed the request out).
func (s *session) expireDeliveries(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, d := range s.pending {
		if now.After(d.deadline) {
			delete(s.pending, id)
			s.answered()
			endSpan(d.span, mxp.CodeTimeout)
		}
	}
}
