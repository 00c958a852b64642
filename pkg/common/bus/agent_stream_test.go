package bus

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// fakeAgentEdge is the accepting end of streams to one agent, as an edge would be: it
// answers the open with its own subject, records what the opener sends there, and lets the
// test publish to the opener.
type fakeAgentEdge struct {
	nc      *nats.Conn
	subject string // the accepting end's subject

	mu     sync.Mutex
	opener string // the opener's Mxp-Stream-Peer
	id     string
	open   []byte
	credit int
	closes []string // bodies of the opener's closes
	got    chan string
}

func newFakeAgentEdge(t *testing.T, nc *nats.Conn, agentID string, refuse *Error) *fakeAgentEdge {
	t.Helper()
	e := &fakeAgentEdge{nc: nc, subject: nc.NewInbox(), got: make(chan string, 64)}
	sub, err := nc.Subscribe(AgentSubject(agentID, AgentVerbStream), func(m *nats.Msg) {
		if refuse != nil {
			_ = PublishError(nc, m.Reply, refuse)
			return
		}
		e.mu.Lock()
		e.opener, e.id, e.open = m.Header.Get(HeaderStreamPeer), m.Header.Get(HeaderStreamID), m.Data
		e.mu.Unlock()
		r := nats.NewMsg(m.Reply)
		r.Header.Set(HeaderStreamPeer, e.subject)
		_ = m.RespondMsg(r)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	back, err := nc.Subscribe(e.subject, func(m *nats.Msg) {
		e.mu.Lock()
		switch op := m.Header.Get(HeaderStreamOp); op {
		case StreamOpCredit:
			n, _ := strconv.Atoi(string(m.Data))
			e.credit += n
		case StreamOpClose:
			e.closes = append(e.closes, string(m.Data))
		}
		e.mu.Unlock()
		e.got <- m.Header.Get(HeaderStreamOp)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = back.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return e
}

// send publishes an operation of the stream to the opener (id "" is the stream's own).
func (e *fakeAgentEdge) send(t *testing.T, op, id string, data []byte) {
	t.Helper()
	e.mu.Lock()
	if id == "" {
		id = e.id
	}
	m := &nats.Msg{Subject: e.opener, Header: nats.Header{}, Data: data}
	e.mu.Unlock()
	m.Header.Set(HeaderStreamID, id)
	m.Header.Set(HeaderStreamOp, op)
	if err := e.nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
}

func testConn(t *testing.T) *nats.Conn {
	t.Helper()
	b, err := Start(Config{Embedded: EmbeddedConfig{DontListen: true}}, "t", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b.Conn
}

func TestAgentStream(t *testing.T) {
	nc := testConn(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	agentID := mxp.NewStreamID().String() // any id-shaped token

	t.Run("chunks in order, credit for each, clean close", func(t *testing.T) {
		e := newFakeAgentEdge(t, nc, agentID, nil)
		s, err := OpenAgentStream(ctx, nc, agentID, mxp.StreamKindJSON, []byte(`{"q":1}`), nats.Header{HeaderAgentID: {"caller"}})
		if err != nil {
			t.Fatal(err)
		}
		if string(e.open) != `{"q":1}` {
			t.Fatalf("open data %q", e.open)
		}
		e.send(t, StreamOpChunk, "not-this-stream", []byte("stray")) // ignored
		const n = 40
		for i := range n {
			e.send(t, StreamOpChunk, "", []byte(strconv.Itoa(i)))
		}
		for i := range n {
			b, err := s.Recv(ctx)
			if err != nil || string(b) != strconv.Itoa(i) {
				t.Fatalf("chunk %d: %q, %v", i, b, err)
			}
		}
		// Every chunk taken is credited by the time nothing more is buffered, so the
		// agent's edge never waits on a batch.
		e.waitCredit(ctx, t, n)
		e.send(t, StreamOpClose, "", nil)
		if _, err := s.Recv(ctx); !errors.Is(err, io.EOF) {
			t.Fatalf("after the close: %v, want io.EOF", err)
		}
		if _, err := s.Recv(ctx); !errors.Is(err, io.EOF) {
			t.Fatalf("again: %v, want io.EOF", err)
		}
		_ = s.Close() // after the agent's close: nothing is sent
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		if len(e.closes) != 0 {
			t.Fatalf("the opener sent closes %q after the agent's", e.closes)
		}
	})

	t.Run("the agent's error", func(t *testing.T) {
		e := newFakeAgentEdge(t, nc, agentID, nil)
		s, err := OpenAgentStream(ctx, nc, agentID, mxp.StreamKindJSON, []byte("{}"), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(mxp.ErrorPayload{Error: "slow down", Code: "rate_limited"})
		e.send(t, StreamOpClose, "", body)
		_, err = s.Recv(ctx)
		var re *mxp.RemoteError
		if !errors.As(err, &re) || re.Code != "rate_limited" || re.Message != "slow down" {
			t.Fatalf("got %v, want the agent's rate_limited", err)
		}
		_ = s.Close()
	})

	t.Run("the opener closes first", func(t *testing.T) {
		e := newFakeAgentEdge(t, nc, agentID, nil)
		s, err := OpenAgentStream(ctx, nc, agentID, mxp.StreamKindJSON, []byte("{}"), nil)
		if err != nil {
			t.Fatal(err)
		}
		recvd := make(chan error, 1)
		go func() { _, err := s.Recv(ctx); recvd <- err }()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-recvd; mxp.ErrorCodeFor(err) != mxp.CodeCanceled {
			t.Fatalf("a Recv waiting at Close got %v, want canceled", err)
		}
		if op := <-e.got; op != StreamOpClose {
			t.Fatalf("the agent's edge got %q, want a close", op)
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		var p mxp.ErrorPayload
		if len(e.closes) != 1 || json.Unmarshal([]byte(e.closes[0]), &p) != nil || p.Code != mxp.CodeCanceled {
			t.Fatalf("closes %q, want one with code canceled", e.closes)
		}
	})

	t.Run("more than the buffer without credit", func(t *testing.T) {
		newFakeAgentEdge(t, nc, agentID, nil)
		s, err := OpenAgentStream(ctx, nc, agentID, mxp.StreamKindJSON, []byte("{}"), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		// The subscription's callback, called here on the test's goroutine: no reader
		// takes anything meanwhile.
		chunk := &nats.Msg{Header: nats.Header{HeaderStreamID: {s.id}, HeaderStreamOp: {StreamOpChunk}}, Data: []byte("x")}
		for range MaxAgentStreamBuffer + 1 {
			s.take(chunk)
		}
		if b, err := s.Recv(ctx); err != nil || string(b) != "x" {
			t.Fatalf("within the buffer: %q, %v", b, err)
		}
		s.take(chunk) // fits in the slot just taken
		s.take(chunk) // one beyond
		if !s.Buffered() {
			t.Fatal("an ended stream reports nothing buffered")
		}
		if _, err := s.Recv(ctx); mxp.ErrorCodeFor(err) != mxp.CodeInternal {
			t.Fatalf("got %v, want internal (beyond the window)", err)
		}
	})

	t.Run("no edge carries the agent", func(t *testing.T) {
		_, err := OpenAgentStream(ctx, nc, "nobody", mxp.StreamKindJSON, nil, nil)
		if mxp.ErrorCodeFor(err) != mxp.CodeUnreachable {
			t.Fatalf("got %v, want unreachable", err)
		}
	})

	t.Run("the agent's edge refuses", func(t *testing.T) {
		other := "refusing-agent"
		newFakeAgentEdge(t, nc, other, &Error{Code: mxp.CodeRateLimited, Message: "too many streams"})
		_, err := OpenAgentStream(ctx, nc, other, mxp.StreamKindJSON, nil, nil)
		var re *mxp.RemoteError
		if !errors.As(err, &re) || re.Code != mxp.CodeRateLimited || re.Message != "too many streams" {
			t.Fatalf("got %v, want the refusal", err)
		}
	})
}

// waitCredit waits until the opener has returned n credits in all.
func (e *fakeAgentEdge) waitCredit(ctx context.Context, t *testing.T, n int) {
	t.Helper()
	for {
		e.mu.Lock()
		got := e.credit
		e.mu.Unlock()
		if got == n {
			return
		}
		if got > n {
			t.Fatalf("credit %d for %d chunks", got, n)
		}
		select {
		case <-e.got:
		case <-ctx.Done():
			t.Fatalf("credit %d of %d", got, n)
		}
	}
}

// TestAgentStreamUnreadableClose: a close whose body is not an Error payload ends the
// stream with internal (the agent's end broke the protocol), not a clean end.
func TestAgentStreamUnreadableClose(t *testing.T) {
	nc := testConn(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e := newFakeAgentEdge(t, nc, "agent", nil)
	s, err := OpenAgentStream(ctx, nc, "agent", mxp.StreamKindJSON, []byte("{}"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	e.send(t, StreamOpClose, "", []byte("not json"))
	if _, err := s.Recv(ctx); mxp.ErrorCodeFor(err) != mxp.CodeInternal {
		t.Fatalf("got %v, want internal", err)
	}
}

// An open whose opener gives up before the agent's edge answers is closed as soon as the
// edge accepts it: the edge gets a close of code canceled for the stream, so the agent's
// handler stops instead of running until the edge's idle timeout. Before, the answer went
// to the request's reply inbox, gone with the opener's context, and no close was ever
// sent.
func TestAgentStreamAbandonedOpenIsClosed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc := testConn(t)
	edgeSubject := nc.NewInbox()
	opens := make(chan *nats.Msg, 1)
	sub, err := nc.Subscribe(AgentSubject("slow-agent", AgentVerbStream), func(m *nats.Msg) { opens <- m })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	closes, err := nc.SubscribeSync(edgeSubject)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	octx, ocancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		s, err := OpenAgentStream(octx, nc, "slow-agent", mxp.StreamKindJSON, []byte("{}"), nil)
		if s != nil {
			err = errors.New("opened")
		}
		errc <- err
	}()
	open := <-opens // the edge has the open and has not answered yet
	ocancel()
	if err := <-errc; mxp.ErrorCodeFor(err) != mxp.CodeUnavailable {
		t.Fatalf("abandoned open: %v, want unavailable (cancelled)", err)
	}
	r := nats.NewMsg(open.Reply) // the edge accepts, too late for the opener
	r.Header.Set(HeaderStreamPeer, edgeSubject)
	if err := open.RespondMsg(r); err != nil {
		t.Fatal(err)
	}
	m, err := closes.NextMsgWithContext(ctx)
	if err != nil {
		t.Fatalf("no close for the abandoned stream: %v", err)
	}
	var p mxp.ErrorPayload
	if m.Header.Get(HeaderStreamOp) != StreamOpClose || m.Header.Get(HeaderStreamID) != open.Header.Get(HeaderStreamID) ||
		json.Unmarshal(m.Data, &p) != nil || p.Code != mxp.CodeCanceled {
		t.Fatalf("edge got %v %q, want a canceled close of stream %s", m.Header, m.Data, open.Header.Get(HeaderStreamID))
	}
}
