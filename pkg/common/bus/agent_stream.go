package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// Operations of the stream traffic between the two ends of a stream to an agent
// (HeaderStreamOp on EdgeVerbStream subjects and on an AgentStream's inbox).
const (
	// StreamOpChunk carries one chunk; the body is the chunk's data.
	StreamOpChunk = "chunk"
	// StreamOpCredit returns credit: the body is the decimal count of chunks the sender of
	// the credit has taken since it last returned any.
	StreamOpCredit = "credit"
	// StreamOpClose ends the stream: an empty body for a clean end, else an MXP Error
	// payload {"error","code"}.
	StreamOpClose = "close"
)

// MaxAgentStreamBuffer bounds the chunks an AgentStream holds that its reader has not
// taken. The agent's edge sends at most its stream window (services/edge
// Config.StreamWindow, 64 by default) without credit, so only a misbehaving end fills it;
// the stream then fails instead of growing.
const MaxAgentStreamBuffer = 1024

// agentStreamCreditBatch is how many taken chunks an AgentStream returns as credit at once
// (sooner when nothing more is buffered, so the agent's edge never waits on a batch).
const agentStreamCreditBatch = 16

// AgentStream is the opening end of a stream to an agent, for a service on the bus: the
// same protocol an edge speaks to the edge of the target agent (docs/edge.md, streams
// between edges), so the agent sees an ordinary StreamOpen. The service sends only the
// open's data; the agent answers with chunks and a close. Recv is used by one goroutine;
// Close may be called from any, at any time, more than once.
type AgentStream struct {
	nc  *nats.Conn
	id  string
	sub *nats.Subscription

	in     chan agentStreamMsg // chunks and the close, in the order the agent's edge sent them
	answer chan *nats.Msg      // the answer to the open (capacity 1; fed once, under mu)
	done   chan struct{}       // closed when the stream ends locally (Close, overflow, the close read)
	once   sync.Once

	mu        sync.Mutex
	remote    string      // the agent's edge's subject for this stream; empty until accepted or after the end
	ended     bool        // the close arrived, or Close was called
	answered  bool        // the answer to the open arrived
	abandoned bool        // the opener gave up before the answer: an acceptance is closed at once
	linger    *time.Timer // an abandoned open's wait for its answer (abandonedOpenWait)
	owed      int         // chunks taken and not yet credited
	err       error       // why the stream ended, once Recv has seen it (io.EOF for a clean end)
}

// abandonedOpenWait is how long the inbox of an open whose opener gave up waits for the
// agent's edge's answer, to close the stream it accepted (see OpenAgentStream). An edge
// answers within milliseconds; one that never does (it died) opened nothing to close.
const abandonedOpenWait = 30 * time.Second

type agentStreamMsg struct {
	op   string
	data []byte
}

// OpenAgentStream opens a stream to the agent with id agentID through the edge that
// carries it: it subscribes an inbox for the stream's traffic, sends a request to
// AgentSubject(agentID, AgentVerbStream) with the stream id, kind and inbox in the headers
// of h (which may carry a deadline, trace and caller; it is modified), and returns once
// the agent's edge accepted the open. Errors are *mxp.RemoteError: unreachable when no
// edge carries the agent, the agent's edge's own refusal otherwise, or ctx's error.
//
// The open is cancellable: the agent's edge answers on the stream's own inbox, so when
// ctx ends before the answer, the inbox stays subscribed (up to abandonedOpenWait) and
// an acceptance that comes later is answered at once with a close of code canceled: the
// agent's handler stops instead of running until the edge's idle timeout.
func OpenAgentStream(ctx context.Context, nc *nats.Conn, agentID string, kind mxp.StreamKind, data []byte, h nats.Header) (*AgentStream, error) {
	s := &AgentStream{nc: nc, id: mxp.NewStreamID().String(), in: make(chan agentStreamMsg, MaxAgentStreamBuffer+1),
		answer: make(chan *nats.Msg, 1), done: make(chan struct{})}
	inbox := nc.NewInbox()
	sub, err := nc.Subscribe(inbox, s.take)
	if err != nil {
		return nil, &mxp.RemoteError{Code: mxp.CodeUnavailable, Message: "subscribing the stream's inbox: " + err.Error()}
	}
	s.sub = sub
	if h == nil {
		h = nats.Header{}
	}
	h.Set(HeaderStreamID, s.id)
	h.Set(HeaderStreamKind, strconv.Itoa(int(kind)))
	h.Set(HeaderStreamPeer, inbox)
	subject := AgentSubject(agentID, AgentVerbStream)
	if err := nc.PublishMsg(&nats.Msg{Subject: subject, Reply: inbox, Header: h, Data: data}); err != nil {
		_ = sub.Unsubscribe()
		return nil, AgentError(err, agentID)
	}
	var reply *nats.Msg
	select {
	case reply = <-s.answer:
	case <-ctx.Done():
		s.abandon()
		return nil, AgentError(ctx.Err(), agentID)
	}
	remote, err := openAnswer(reply)
	if err != nil {
		_ = sub.Unsubscribe()
		return nil, AgentError(err, agentID)
	}
	s.mu.Lock()
	s.remote = remote
	s.mu.Unlock()
	return s, nil
}

// openAnswer reads the answer to a stream open: the accepting edge's subject for the
// stream, or why there is none (its refusal; nats.ErrNoResponders, the server's answer
// when no edge carries the agent).
func openAnswer(reply *nats.Msg) (string, error) {
	if len(reply.Data) == 0 && reply.Header.Get("Status") == "503" { // nats.go's no-responders status
		return "", nats.ErrNoResponders
	}
	if err := ReplyError(reply); err != nil {
		return "", err
	}
	remote := reply.Header.Get(HeaderStreamPeer)
	if remote == "" {
		return "", &mxp.RemoteError{Code: mxp.CodeInternal, Message: "the agent's edge accepted the stream without naming its end"}
	}
	return remote, nil
}

// abandon is OpenAgentStream giving up before the answer: the stream is over here, and
// the answer, now or when it comes, is dealt with by closeAbandoned.
func (s *AgentStream) abandon() {
	s.mu.Lock()
	s.abandoned, s.ended = true, true
	var reply *nats.Msg
	select {
	case reply = <-s.answer:
	default:
		s.linger = time.AfterFunc(abandonedOpenWait, func() { s.finish(&mxp.RemoteError{Code: mxp.CodeCanceled, Message: "the opener gave up"}) })
	}
	s.mu.Unlock()
	if reply != nil {
		s.closeAbandoned(reply)
	}
}

// closeAbandoned answers the answer to an abandoned open: an acceptance gets a close of
// code canceled; then the inbox is let go.
func (s *AgentStream) closeAbandoned(reply *nats.Msg) {
	if remote, err := openAnswer(reply); err == nil {
		body, _ := json.Marshal(mxp.ErrorPayload{Error: "the opener gave up before the stream opened", Code: mxp.CodeCanceled})
		_ = s.publish(remote, StreamOpClose, body)
	}
	s.mu.Lock()
	if s.linger != nil {
		s.linger.Stop()
	}
	s.mu.Unlock()
	s.finish(&mxp.RemoteError{Code: mxp.CodeCanceled, Message: "the opener gave up"})
}

// AgentError turns the outcome of a bus request to an agent (a Call or a stream open) into
// an *mxp.RemoteError: no responders is unreachable (no edge carries the agent), an error
// reply keeps its code, ctx errors are timeout (deadline) or unavailable (canceled), and
// anything else from the bus client is unavailable.
func AgentError(err error, agentID string) error {
	var (
		re *mxp.RemoteError
		be *Error
	)
	switch {
	case errors.As(err, &re):
		return re
	case errors.As(err, &be):
		return &mxp.RemoteError{Code: be.Code, Message: be.Message}
	case errors.Is(err, nats.ErrNoResponders):
		return &mxp.RemoteError{Code: mxp.CodeUnreachable, Message: "no edge carries agent " + agentID}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return &mxp.RemoteError{Code: mxp.CodeTimeout, Message: "agent " + agentID + " did not answer in time"}
	}
	return &mxp.RemoteError{Code: mxp.CodeUnavailable, Message: "reaching agent " + agentID + ": " + err.Error()}
}

// take receives the stream's traffic (the subscription's callback, so in order): the
// answer to the open (the only message without an operation), then chunks and the close.
func (s *AgentStream) take(msg *nats.Msg) {
	if msg.Header.Get(HeaderStreamOp) == "" {
		s.mu.Lock()
		if s.answered { // one answer counts
			s.mu.Unlock()
			return
		}
		s.answered = true
		if !s.abandoned {
			s.answer <- msg // capacity 1, fed once
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		s.closeAbandoned(msg)
		return
	}
	if msg.Header.Get(HeaderStreamID) != s.id {
		return // not this stream's: a stray publish to the inbox
	}
	m := agentStreamMsg{op: msg.Header.Get(HeaderStreamOp), data: msg.Data}
	switch m.op {
	case StreamOpChunk, StreamOpClose:
	default:
		return // credit flows the other way; nothing else is defined
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	if m.op == StreamOpClose {
		s.ended, s.remote = true, "" // the agent's end is gone: nothing more to send it
	}
	select {
	case s.in <- m:
	default: // beyond any window: end the stream rather than grow
		s.ended, s.remote = true, ""
		s.err = &mxp.RemoteError{Code: mxp.CodeInternal,
			Message: fmt.Sprintf("the agent's edge sent more than %d chunks without credit", MaxAgentStreamBuffer)}
		s.once.Do(func() { close(s.done) })
	}
}

// Recv returns the agent's next chunk, io.EOF after a clean close, the agent's error
// (*mxp.RemoteError) after a close that carried one, or ctx's error (the stream stays
// open; Close it).
func (s *AgentStream) Recv(ctx context.Context) ([]byte, error) {
	var m agentStreamMsg
	select {
	case <-s.done:
		s.mu.Lock()
		defer s.mu.Unlock()
		return nil, s.err
	default:
	}
	select {
	case m = <-s.in:
	case <-s.done:
		s.mu.Lock()
		defer s.mu.Unlock()
		return nil, s.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if m.op == StreamOpClose {
		err := error(io.EOF)
		if len(m.data) > 0 {
			var p mxp.ErrorPayload
			if json.Unmarshal(m.data, &p) == nil && p.Code != "" {
				err = &mxp.RemoteError{Code: p.Code, Message: p.Error}
			} else {
				// the agent's end broke the protocol: its fault, not the request's
				err = &mxp.RemoteError{Code: mxp.CodeInternal, Message: fmt.Sprintf("unreadable close of the stream: %.64q", m.data)}
			}
		}
		s.finish(err)
		return nil, err
	}
	s.credit(len(s.in) == 0)
	return m.data, nil
}

// credit returns the chunks taken so far once a batch is due or nothing more is buffered.
func (s *AgentStream) credit(idle bool) {
	s.mu.Lock()
	s.owed++
	n, remote := s.owed, s.remote
	if remote == "" || (n < agentStreamCreditBatch && !idle) {
		s.mu.Unlock()
		return
	}
	s.owed = 0
	s.mu.Unlock()
	_ = s.publish(remote, StreamOpCredit, strconv.AppendInt(nil, int64(n), 10))
}

func (s *AgentStream) publish(remote, op string, data []byte) error {
	msg := &nats.Msg{Subject: remote, Header: nats.Header{}, Data: data}
	msg.Header.Set(HeaderStreamID, s.id)
	msg.Header.Set(HeaderStreamOp, op)
	return s.nc.PublishMsg(msg)
}

// finish records the end and stops taking traffic.
func (s *AgentStream) finish(err error) {
	s.mu.Lock()
	s.ended, s.remote, s.err = true, "", err
	s.mu.Unlock()
	s.once.Do(func() { close(s.done) })
	_ = s.sub.Unsubscribe()
}

// Close ends the stream. Before the agent's close arrived it tells the agent's edge to
// stop, with an Error payload of code canceled, so the agent's handler sees its peer gone.
func (s *AgentStream) Close() error {
	s.mu.Lock()
	remote := s.remote
	s.mu.Unlock()
	if remote != "" {
		body, _ := json.Marshal(mxp.ErrorPayload{Error: "the opener closed the stream", Code: mxp.CodeCanceled})
		_ = s.publish(remote, StreamOpClose, body)
	}
	s.mu.Lock()
	if s.err == nil {
		s.err = &mxp.RemoteError{Code: mxp.CodeCanceled, Message: "the stream was closed"}
	}
	s.ended, s.remote = true, ""
	s.mu.Unlock()
	s.once.Do(func() { close(s.done) })
	return s.sub.Unsubscribe()
}

// Buffered reports whether Recv would return without waiting: a chunk or the close is
// here, or the stream has ended.
func (s *AgentStream) Buffered() bool {
	select {
	case <-s.done:
		return true
	default:
		return len(s.in) > 0
	}
}
