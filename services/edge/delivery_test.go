package edge

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/mxp"
	"github.com/mxp-mesh/mesh/pkg/mxp/transport"
)

// flowPeer is a secure-like peer (its own reader, TrySend) whose flow control the test
// drives: while full, TrySend refuses and Send waits until open is closed.
type flowPeer struct {
	open chan struct{}

	mu    sync.Mutex
	full  bool
	sent  []uint64 // message ids of the Calls handed over, in order
	tried int      // TrySend calls
	sends chan struct{}
}

func newFlowPeer() *flowPeer {
	return &flowPeer{open: make(chan struct{}), sends: make(chan struct{}, 16)}
}

func (*flowPeer) ID() string                 { return "key:flow" }
func (*flowPeer) Identity() string           { return "flow" }
func (*flowPeer) RemoteAddr() netip.AddrPort { return netip.AddrPort{} }
func (*flowPeer) MaxFrame() int              { return 0 }
func (*flowPeer) Close() error               { return nil }
func (*flowPeer) DedicatedReader() bool      { return true }

func (p *flowPeer) record(frame []byte) {
	p.sent = append(p.sent, peekID(frame))
	p.sends <- struct{}{}
}

func (p *flowPeer) TrySend(frame []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tried++
	if p.full {
		return transport.ErrSendBufferFull
	}
	p.record(frame)
	return nil
}

func (p *flowPeer) Send(ctx context.Context, frame []byte) error {
	select {
	case <-p.open:
	case <-ctx.Done():
		return ctx.Err()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.record(frame)
	return nil
}

func (p *flowPeer) ids() []uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]uint64(nil), p.sent...)
}

// carry makes s the confirmed carrier of a new agent id on its edge.
func carry(e *Edge, s *session) mxp.AgentID {
	id := mxp.NewAgentID()
	e.mu.Lock()
	e.sessions[s.peer] = s
	e.agents[id] = s
	e.mu.Unlock()
	s.mu.Lock()
	s.agents[id] = &carried{confirmed: true}
	s.order = append(s.order, id)
	s.mu.Unlock()
	return id
}

func callMsg(id mxp.AgentID, reply string) *nats.Msg {
	m := &nats.Msg{Subject: bus.AgentSubject(id.String(), bus.AgentVerbCall), Reply: reply, Header: nats.Header{}, Data: []byte("x")}
	bus.SetDeadline(m.Header, time.Now().Add(time.Minute))
	return m
}

// TestCallDeliveredInlineWhenPeerHasRoom: a Call to a peer whose Send may wait is handed
// over on the goroutine that took it from the bus when the peer has room (TrySend), so it
// has reached the peer when handleAgentMsg returns, with no goroutine hand-off; when the
// peer has no room it is queued and the session's delivery goroutine sends it once the
// peer has room, and a Call arriving while one is queued queues behind it even though the
// peer would take it, so that Calls reach the peer in arrival order.
func TestCallDeliveredInlineWhenPeerHasRoom(t *testing.T) {
	te := startEdge(t, testBus(t), nil)
	e := te.Edge
	p := newFlowPeer()
	s := newSession(e, p)
	if s.queue != nil {
		t.Fatal("a peer with its own reader got a frame queue")
	}
	id := carry(e, s)

	e.handleAgentMsg(callMsg(id, "inbox.1"))
	if got := p.ids(); len(got) != 1 {
		t.Fatalf("a Call to a peer with room: %d frames handed over when handleAgentMsg returned, want 1 (by TrySend)", len(got))
	}
	<-p.sends

	p.mu.Lock()
	p.full = true
	p.mu.Unlock()
	e.handleAgentMsg(callMsg(id, "inbox.2")) // no room: queued, its goroutine waits in Send
	p.mu.Lock()
	p.full = false // room again, but the queued Call must go first
	p.mu.Unlock()
	e.handleAgentMsg(callMsg(id, "inbox.3"))
	if got := p.ids(); len(got) != 1 {
		t.Fatalf("%d frames handed over while a Call waited in the queue, want 1", len(got))
	}
	close(p.open)
	<-p.sends
	<-p.sends
	got := p.ids()
	if len(got) != 3 || !(got[0] < got[1] && got[1] < got[2]) {
		t.Fatalf("frames handed over with ids %v, want three in arrival order", got)
	}
	s.mu.Lock()
	var replies []string
	for _, d := range s.pending {
		replies = append(replies, d.reply)
	}
	s.mu.Unlock()
	if len(replies) != 3 {
		t.Fatalf("%d deliveries recorded (%v), want 3: one per Call handed over, none for the refused TrySend", len(replies), replies)
	}
	s.close(nil)
}

// TestRegisterKeepsItsPayload: the plaintext listener reads every datagram into one buffer,
// and the edge handles a registration without copying the frame (inline, before Frame
// returns) but sends it to the registry later, from another goroutine, after a probe of
// the bus. A frame that arrives meanwhile must not overwrite what the registry gets.
func TestRegisterKeepsItsPayload(t *testing.T) {
	b := testBus(t)
	reg := startFakeRegistry(t, b)
	te := startEdge(t, b, nil)
	c := dial(t, te.addr)
	id := mxp.NewAgentID()
	req := mxp.RegisterRequest{ID: id, Name: "keeps-its-payload", Capabilities: []string{"echo"}, Metadata: mxp.AgentMetadata{Version: "1.0.0"},
		Address: netip.MustParseAddrPort("127.0.0.1:7000")} // given: the edge sends the frame's own payload on
	payload, err := req.AppendPayload(nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Start(ctxT(t), &mxp.Frame{Type: mxp.TypeAgentRegister, Payload: payload})
	if err != nil {
		t.Fatal(err)
	}
	// Right behind it, a frame as long, of other bytes: it lands in the listener's buffer
	// while the registration waits for its probe.
	other := make([]byte, len(payload))
	for i := range other {
		other[i] = 'z'
	}
	if err := c.Send(ctxT(t), &mxp.Frame{Type: mxp.TypeAgentDiscover, Payload: other}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Wait(ctxT(t)); err != nil {
		t.Fatalf("register: %v", err)
	}
	reg.mu.Lock()
	got, ok := reg.agents[id]
	reg.mu.Unlock()
	if !ok || got.Name != req.Name {
		t.Fatalf("the registry got %+v (found %v), want the agent %q", got, ok, req.Name)
	}
}
