package edge

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// The caller's side of a Call, in the order it runs: the peer's Call frame (session.handle)
// → call: decode, take an in-flight slot, pick the subject, build the headers → request:
// Ack, publish through the reply router (replies.go) → the reply, a timeout, or no
// responders comes back on the router's subscription → answerFromBus: one Response or
// Error frame to the peer, the slot given back. Nothing here blocks or starts a goroutine.
// The callee's side (the bus → the called agent → its answer back) is call_callee.go; the
// micro error replies both sides publish are busreply.go.

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
// Contract: runs on the session's frame goroutine; takes at most one in-flight slot, which
// request's completion gives back exactly once.
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

// acquire takes one in-flight slot; false when the session is at its limit.
// Contract: the only place s.inflight grows; each true result is paired with exactly one
// release, and the inflight gauge moves with s.inflight.
func (s *session) acquire() bool {
	if s.inflight.Add(1) > int64(s.e.cfg.Load().Limits.MaxInFlight) {
		s.inflight.Add(-1)
		return false
	}
	s.e.m.inflight.Inc()
	return true
}

// release gives back a slot acquire took. Contract: called once per true acquire.
func (s *session) release() {
	s.inflight.Add(-1)
	s.e.m.inflight.Dec()
}

// request sends msg on the bus and answers the peer when the reply comes or the deadline
// passes: Response (the reply's payload) or Error; an Ack first when f asked for one and
// the message was handed to the bus. after, when set, runs once the outcome is known. It
// does not block. When the edge traces, the request's span (startRequestSpan) covers it,
// from here to the answer.
// Contract: the caller holds an in-flight slot (acquire); it is released exactly once,
// when the router completes the request (reply, deadline, publish error or shutdown).
// Nothing is sent to a session whose connection has gone.
func (s *session) request(f *mxp.Frame, msg *nats.Msg, deadline time.Time, arrived time.Time, after func()) {
	span := s.startRequestSpan(f, msg.Subject, msg.Header)
	s.sendAck(f) // before the publish: the answer can overtake anything sent after it
	// The answer needs the frame's type and ids, not its payload, which may be the
	// transport's buffer (reused once Frame returns): the closure keeps a copy without it,
	// in itself rather than in a second allocation.
	req := mxp.Frame{Type: f.Type, Flags: f.Flags, MessageID: f.MessageID, TraceID: f.TraceID}
	_ = s.e.replies.request(msg, deadline, func(reply *nats.Msg, err error, b *outBatch) {
		defer s.release()
		if after != nil {
			defer after()
		}
		if s.ctx.Err() != nil {
			endSpan(span, mxp.CodeUnavailable)
			return // the connection is gone; nobody to answer
		}
		r := req // taking req's address would move it out of the closure into an allocation
		endSpan(span, s.answerFromBus(&r, reply, err, msg.Subject, b))
		s.e.m.observeRoute(req.Type, time.Since(arrived).Seconds())
	})
}

// answerFromBus sends the peer the frame for a bus round trip's outcome and returns the
// outcome's error code ("" for a Response). With b, a
// Response goes with SendLater and the peer joins b (errors, rare, go at once).
// Contract: sends exactly one frame (Response or Error) for f and counts f once.
func (s *session) answerFromBus(f *mxp.Frame, reply *nats.Msg, err error, subject string, b *outBatch) mxp.ErrorCode {
	if err != nil {
		code, text := busFailure(err, subject)
		s.count(f.Type, dirIn, string(code))
		s.sendError(f.MessageID, f.TraceID, code, text)
		return code
	}
	if rerr := bus.ReplyError(reply); rerr != nil {
		var be *bus.Error
		code, text := mxp.CodeInternal, rerr.Error()
		if errors.As(rerr, &be) {
			code, text = be.Code, be.Message
		}
		s.count(f.Type, dirIn, string(code))
		s.sendError(f.MessageID, f.TraceID, code, text)
		return code
	}
	s.count(f.Type, dirIn, outcomeOK)
	s.sendVia(b, &mxp.Frame{Type: mxp.TypeResponse, MessageID: f.MessageID, TraceID: f.TraceID, Payload: reply.Data})
	return ""
}
