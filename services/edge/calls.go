package edge

import (
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// targetSubject returns the bus subject for verb at target: the service's subject for a
// well-known service id, the agent's subject otherwise.
func (e *Edge) targetSubject(target mxp.AgentID, verb string) (subject string, isService bool) {
	if subj, ok := e.services[target]; ok {
		return subj, true
	}
	return bus.AgentSubject(target.String(), verb), false
}

// call routes a Call to its target and answers the peer with the target's Response, or an
// Error: unreachable at once when nothing answers at the target, timeout at the deadline.
func (s *session) call(f mxp.Frame, arrived time.Time) {
	cp, err := mxp.DecodeCall(f.Payload)
	if err != nil {
		s.reject(f.MessageID, f.Type.String(), mxp.CodeInvalidPayload, err.Error())
		return
	}
	if !s.acquire() {
		s.reject(f.MessageID, f.Type.String(), mxp.CodeRateLimited,
			fmt.Sprintf("more than %d calls in flight on this connection", s.e.cfg.Load().Limits.MaxInFlight))
		return
	}
	cfg := s.e.cfg.Load()
	timeout := cfg.DefaultCallTimeout
	if cp.TimeoutSeconds > 0 {
		timeout = min(time.Duration(cp.TimeoutSeconds)*time.Second, cfg.MaxCallTimeout)
	}
	deadline := arrived.Add(timeout)
	subject, isService := s.e.targetSubject(cp.Target, bus.AgentVerbCall)
	msg := &nats.Msg{Subject: subject, Header: s.headers(&f, deadline, isService), Data: cp.Data}
	s.request(&f, msg, deadline, arrived, nil)
}

// deliverCall hands a Call from the bus to the agent's peer. The frame gets an id of the
// edge's; the peer's Response with that id is published to the caller's inbox.
func (s *session) deliverCall(target mxp.AgentID, msg *nats.Msg) {
	if msg.Reply == "" {
		return // a Call nobody waits for: nothing to answer
	}
	deadline, ok, _ := bus.Deadline(msg.Header)
	if !ok {
		deadline = time.Now().Add(s.e.cfg.Load().DefaultCallTimeout)
	}
	remaining := time.Until(deadline)
	if remaining <= 0 {
		respondError(msg, mxp.CodeTimeout, "the caller's deadline passed before delivery")
		return
	}
	traceID, _, _ := bus.TraceID(msg.Header)
	id := s.nextID.Add(1)
	s.mu.Lock()
	if s.closeErr != nil {
		s.mu.Unlock()
		respondError(msg, mxp.CodeUnreachable, "the agent's connection closed")
		return
	}
	s.pending[id] = delivery{reply: msg.Reply, deadline: deadline}
	s.mu.Unlock()
	s.awaitAnswer()

	secs := uint32(math.Ceil(remaining.Seconds()))
	cp := mxp.CallPayload{Target: s.deliveredTarget(target, msg.Header), TimeoutSeconds: secs, Data: msg.Data}
	bp := framePool.Get().(*[]byte)
	payload, _ := cp.AppendPayload((*bp)[:0])
	err := s.send(&mxp.Frame{Type: mxp.TypeCall, MessageID: id, TraceID: traceID, Payload: payload})
	*bp = payload[:0]
	framePool.Put(bp)
	if err != nil {
		s.mu.Lock()
		_, still := s.pending[id]
		delete(s.pending, id)
		s.mu.Unlock()
		if still {
			s.answered()
			code := mxp.CodeUnavailable
			if err == ErrFrameTooLarge {
				code = mxp.CodeTooLarge
			}
			respondError(msg, code, "cannot deliver the call to the agent: "+err.Error())
		}
	}
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
// one.
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
func (s *session) drainDeliveries() {
	for {
		c, ok := s.deliveries.pop()
		if !ok {
			return
		}
		s.deliverCall(c.target, c.msg)
		s.delivering.Add(-1)
	}
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
	return true
}

// answer takes a Response or Error from the peer for a Call delivered to it.
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
	if f.Type == mxp.TypeError {
		ep, err := mxp.DecodeErrorPayload(f.Payload)
		if err != nil {
			ep = mxp.ErrorPayload{Error: "the agent sent a malformed Error payload", Code: mxp.CodeInternal}
		}
		out = errorReply(d.reply, ep.Code, ep.Error)
	} else {
		out = &nats.Msg{Subject: d.reply, Data: f.Payload}
	}
	if err := s.e.nc.PublishMsg(out); err != nil {
		s.reject(f.MessageID, f.Type.String(), mxp.CodeUnavailable, "cannot hand the answer to the bus: "+err.Error())
		return
	}
	s.count(f.Type, dirIn, outcomeOK)
	s.sendAck(&f)
}

// expireDeliveries forgets delivered Calls whose caller's deadline has passed (the caller
// already got timeout).
func (s *session) expireDeliveries(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, d := range s.pending {
		if now.After(d.deadline) {
			delete(s.pending, id)
			s.answered()
		}
	}
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
