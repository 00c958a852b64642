package edge

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// A stream opened to a service (today only the inference service) has one end, on the
// edge of the agent that opened it. The StreamOpen's data is the request; the edge
// subscribes an inbox, publishes the request to the service's stream subject with that
// inbox as the reply, and relays what the service publishes there (docs/edge.md):
//
//   - each chunk message (header bus.HeaderStreamSeq = 0, 1, 2, ...) becomes a
//     StreamChunk whose data is the message body, in order;
//   - the terminal message (no sequence header) is either the service's summary, relayed
//     as a last StreamChunk and followed by a clean StreamClose, or an error reply,
//     relayed as a StreamClose carrying its typed code.
//
// A gap in the sequence, an agent too slow to take ServiceStreamBuffer chunks, the
// deadline (Config.MaxCallTimeout from the open) or StreamIdleTimeout without traffic end
// the stream with an Error in its StreamClose. The agent's StreamClose or its
// disconnection ends the stream at once: the inbox is unsubscribed, so nothing more is
// relayed, and the service is told to stop (bus.StreamCancelSuffix).

// ServiceStreamBuffer is the number of chunks a service stream holds for an agent whose
// connection is slower than the service; beyond it the stream ends with an Error
// (unavailable) instead of buffering without bound.
const ServiceStreamBuffer = 1024

// serviceStreamSubjects maps the well-known services that accept streams through the
// edge to the bus subject that serves them.
var serviceStreamSubjects = map[mxp.AgentID]string{
	mxp.ServiceInference: bus.SubjectInferenceStream,
}

// streamServiceNames lists, for error messages, the services that accept streams.
func streamServiceNames() string {
	name, _ := mxp.ServiceName(mxp.ServiceInference)
	return name + " (" + mxp.ServiceInference.String() + ")"
}

// serviceRelay is the bus side of a stream opened to a service.
type serviceRelay struct {
	subject string // the service's stream subject
	nc      *nats.Conn

	mu       sync.Mutex
	inbox    string
	sub      *nats.Subscription
	timer    *time.Timer
	next     int  // the sequence number the next chunk must carry
	ended    bool // the terminal message arrived, or the stream ended
	terminal bool // the service sent its terminal message: it has finished
}

// stop unsubscribes the inbox and stops the deadline timer; when the service has not
// finished, it tells it to stop (bus.StreamCancelSuffix). Idempotent.
func (r *serviceRelay) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ended = true
	if r.sub != nil {
		_ = r.sub.Unsubscribe()
		r.sub = nil
		if !r.terminal {
			_ = r.nc.Publish(r.inbox+bus.StreamCancelSuffix, nil)
		}
	}
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
}

// streamOpenService opens a stream to a well-known service; p.Data is the request.
func (s *session) streamOpenService(f mxp.Frame, p mxp.StreamOpenPayload, arrived time.Time) {
	e := s.e
	subject, ok := serviceStreamSubjects[p.Target]
	if !ok {
		name, _ := mxp.ServiceName(p.Target)
		s.reject(f.MessageID, f.Type.String(), mxp.CodeUnreachable,
			fmt.Sprintf("the %s service takes Calls, not streams; of the services, only %s accepts streams through the edge",
				name, streamServiceNames()))
		return
	}
	if len(p.Data) == 0 {
		s.reject(f.MessageID, f.Type.String(), mxp.CodeInvalidPayload,
			"a stream to a service carries its request (for inference, the ChatRequest JSON) as the StreamOpen's data")
		return
	}
	cfg := e.cfg.Load()
	st := e.newServiceStream(s, streamKey{id: p.StreamID, opener: true}, p.Target)
	st.svc = &serviceRelay{subject: subject, nc: e.nc}
	if code, text := st.register(); code != "" {
		s.reject(f.MessageID, f.Type.String(), code, text)
		return
	}
	inbox := e.nc.NewInbox()
	sub, err := e.nc.Subscribe(inbox, st.relayServiceMsg)
	if err != nil {
		st.finish()
		code, text := busFailure(err, subject)
		s.reject(f.MessageID, f.Type.String(), code, text)
		return
	}
	// The NATS client's own buffer is bounded too: a message dropped there shows as a gap.
	_ = sub.SetPendingLimits(ServiceStreamBuffer, 64<<20)
	deadline := arrived.Add(cfg.MaxCallTimeout)
	st.svc.mu.Lock()
	if st.svc.ended { // the session closed meanwhile
		st.svc.mu.Unlock()
		_ = sub.Unsubscribe()
		return
	}
	st.svc.sub, st.svc.inbox = sub, inbox
	st.svc.timer = time.AfterFunc(time.Until(deadline), func() {
		st.abort(&mxp.ErrorPayload{Error: "the stream's deadline passed", Code: mxp.CodeTimeout}, true)
	})
	st.svc.mu.Unlock()

	// The open is accepted before the request goes out, so the Response reaches the agent
	// before any chunk; whatever goes wrong from here ends the stream with a StreamClose.
	s.count(f.Type, dirIn, outcomeOK)
	s.sendAck(&f)
	s.send(&mxp.Frame{Type: mxp.TypeResponse, MessageID: f.MessageID, TraceID: f.TraceID})
	msg := &nats.Msg{Subject: subject, Reply: inbox, Header: s.headers(&f, deadline, true), Data: p.Data}
	msg.Header.Set(bus.HeaderStreamID, p.StreamID.String())
	span := s.startRequestSpan(&f, subject, msg.Header) // the open, up to the request on the bus
	if err := e.nc.PublishMsg(msg); err != nil {
		code, text := busFailure(err, subject)
		st.abort(&mxp.ErrorPayload{Error: text, Code: code}, true)
		endSpan(span, code)
		return
	}
	endSpan(span, "")
	e.m.route.WithLabelValues(f.Type.String()).Observe(time.Since(arrived).Seconds())
}

// newServiceStream builds the end of a service stream: its queue holds
// ServiceStreamBuffer chunks plus room for the StreamClose.
func (e *Edge) newServiceStream(s *session, key streamKey, target mxp.AgentID) *stream {
	st := &stream{e: e, s: s, key: key, target: target,
		out: make(chan streamItem, ServiceStreamBuffer+2), wake: make(chan struct{}, 1), done: make(chan struct{})}
	st.touch()
	return st
}

// What one message of a service's stream is (readServiceMsg).
const (
	svcChunk = iota // the next chunk, in sequence
	svcGap          // a chunk out of sequence (or with a malformed number): one was lost
	svcEnd          // the terminal message: the summary, or an error when ep is set
)

// readServiceMsg says what a message of the stream on subject is, given that want chunks
// came before it: a chunk in sequence, a gap (ep says which chunk is missing), or the end
// (ep set for an error reply or the server's no-responders status, nil for a summary).
func readServiceMsg(h nats.Header, data []byte, want int, subject string) (kind int, ep *mxp.ErrorPayload) {
	if seqText := h.Get(bus.HeaderStreamSeq); seqText != "" {
		if seq, err := strconv.Atoi(seqText); err != nil || seq != want {
			return svcGap, &mxp.ErrorPayload{Code: mxp.CodeUnavailable,
				Error: fmt.Sprintf("chunk %d of the %s stream was lost (got %.32q); the stream is incomplete", want, subject, seqText)}
		}
		return svcChunk, nil
	}
	if len(data) == 0 && h.Get("Status") == "503" {
		code, text := busFailure(nats.ErrNoResponders, subject)
		return svcEnd, &mxp.ErrorPayload{Error: text, Code: code}
	}
	if rerr := bus.ReplyError(&nats.Msg{Header: h, Data: data}); rerr != nil {
		var be *bus.Error
		if errors.As(rerr, &be) {
			return svcEnd, &mxp.ErrorPayload{Error: be.Message, Code: be.Code}
		}
		return svcEnd, &mxp.ErrorPayload{Error: rerr.Error(), Code: mxp.CodeInternal}
	}
	return svcEnd, nil
}

// relayServiceMsg takes one message of the service's stream (the subscription's
// callback, so messages arrive in the order the service published them).
func (st *stream) relayServiceMsg(msg *nats.Msg) {
	r := st.svc
	r.mu.Lock()
	if r.ended {
		r.mu.Unlock()
		return
	}
	st.touch()
	traceID, _, _ := bus.TraceID(msg.Header)
	kind, ep := readServiceMsg(msg.Header, msg.Data, r.next, r.subject)
	switch kind {
	case svcGap:
		r.ended = true
		r.mu.Unlock()
		st.e.m.dropped.WithLabelValues("stream_gap").Inc()
		st.abort(ep, true)
		return
	case svcChunk:
		r.next++
		// Two slots stay free for the StreamClose, so an ending is never lost.
		if len(st.out) >= cap(st.out)-2 {
			r.ended = true
			r.mu.Unlock()
			st.e.m.dropped.WithLabelValues("stream_slow_peer").Inc()
			st.abort(&mxp.ErrorPayload{Code: mxp.CodeUnavailable,
				Error: fmt.Sprintf("the connection did not keep up with the stream (%d chunks waiting)", ServiceStreamBuffer)}, true)
			return
		}
		st.out <- streamItem{op: opChunk, data: msg.Data, traceID: traceID}
		r.mu.Unlock()
		return
	}
	r.ended, r.terminal = true, true
	r.mu.Unlock()
	if ep == nil && len(msg.Data) > 0 { // the summary, in one of the two free slots
		select {
		case st.out <- streamItem{op: opChunk, data: msg.Data, traceID: traceID}:
		default: // an ending (deadline, idle) already took the slots
			return
		}
	}
	select {
	case st.out <- streamItem{op: opClose, err: ep, traceID: traceID}:
	default:
		st.finish()
	}
}
