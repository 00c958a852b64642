package edge

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mxp-mesh/mesh/pkg/common/service"
	"github.com/mxp-mesh/mesh/pkg/mxp"
	"github.com/mxp-mesh/mesh/pkg/mxp/transport"
)

func droppedMetric(e *Edge, reason string) float64 {
	return testutil.ToFloat64(e.m.dropped.WithLabelValues(reason))
}

// TestDatagramFrameAnsweredAndCounted: a frame sent as an unreliable datagram on the
// secure transport is answered on the reliable stream (Error invalid_frame with its
// message id) and counted; before, it waited unread in the connection and vanished.
func TestDatagramFrameAnsweredAndCounted(t *testing.T) {
	bs := testBus(t)
	startFakeRegistry(t, bs)
	e, edgeKey := startSecureEdge(t, bs)
	key, err := transport.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	c, err := transport.Dial(ctxT(t), e.addr, edgeKey, transport.Config{PrivateKey: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	for _, tc := range []struct {
		msg  []byte
		id   uint64
		code mxp.ErrorCode
	}{
		{frame(t, mxp.TypeEvent, 41, []byte(`{"topic":"x","data":null}`)), 41, mxp.CodeInvalidFrame},
		{frame(t, mxp.TypeCall, 42, nil), 42, mxp.CodeInvalidFrame},
		{[]byte("nope"), 0, mxp.CodeInvalidFrame},
	} {
		if err := c.SendDatagram(tc.msg); err != nil {
			t.Fatal(err)
		}
		got, err := c.Receive(ctxT(t))
		if err != nil {
			t.Fatalf("no answer to a datagram frame: %v", err)
		}
		f, _, err := mxp.Decode(got)
		if err != nil || f.Type != mxp.TypeError || f.MessageID != tc.id {
			t.Fatalf("answer %s for message %d (%v), want Error for %d", f.Type, f.MessageID, err, tc.id)
		}
		ep, err := mxp.DecodeErrorPayload(f.Payload)
		if err != nil || ep.Code != tc.code {
			t.Fatalf("Error %+v %v, want %s", ep, err, tc.code)
		}
	}
	if n := droppedMetric(e.Edge, "datagram"); n != 3 {
		t.Fatalf("dropped_frames_total{reason=datagram} = %v, want 3", n)
	}
	if n := framesMetric(e.Edge, "Event", dirIn, string(mxp.CodeInvalidFrame)); n != 1 {
		t.Fatalf("frames_total{Event,in,invalid_frame} = %v", n)
	}
}

// TestDatagramBeforeAccept: datagrams that reach the secure transport before the edge has
// opened their connection (the first packets of a connection can carry some before Accept
// returns it) are held and answered once it has, not only counted.
func TestDatagramBeforeAccept(t *testing.T) {
	bs := testBus(t)
	edgeKey, err := transport.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	st, err := ListenSecure("127.0.0.1:0", edgeKey, transport.Config{})
	if err != nil {
		t.Fatal(err)
	}
	key, err := transport.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	c, err := transport.Dial(ctxT(t), st.Addr().String(), st.PublicKey(), transport.Config{PrivateKey: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	for _, id := range []uint64{51, 52} {
		if err := c.SendDatagram(frame(t, mxp.TypeEvent, id, nil)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the datagrams held for the connection", func() bool {
		st.earlyMu.Lock()
		defer st.earlyMu.Unlock()
		for _, q := range st.early {
			return len(q) == 2
		}
		return false
	})

	nc, err := bs.NewConn("edge")
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{Addr: "off"}, Deps{Deps: service.Deps{Conn: nc, Logger: slog.New(slog.DiscardHandler)}, Transports: []Transport{st}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; nc.Close() })
	for _, id := range []uint64{51, 52} {
		got, err := c.Receive(ctxT(t))
		if err != nil {
			t.Fatalf("no answer to a datagram sent before Accept: %v", err)
		}
		f, _, err := mxp.Decode(got)
		if err != nil || f.Type != mxp.TypeError || f.MessageID != id {
			t.Fatalf("answer %s for message %d (%v), want Error for %d", f.Type, f.MessageID, err, id)
		}
	}
	if n := droppedMetric(e, dropDatagram); n != 2 {
		t.Fatalf("dropped_frames_total{reason=datagram} = %v, want 2", n)
	}
	st.earlyMu.Lock()
	defer st.earlyMu.Unlock()
	if len(st.early) != 0 {
		t.Fatalf("%d connections still hold early datagrams", len(st.early))
	}
}

// fullPeer is a peer whose send buffer is full, as a secure connection's is to a Send from
// the transport's read loop (which returns ErrSendBufferFull instead of waiting).
type fullPeer struct{ memPeer }

func (p *fullPeer) Send(context.Context, []byte) error { return transport.ErrSendBufferFull }

// TestDatagramAnswerOverFullSendBuffer: the answer to a datagram, sent from the read loop
// that serves every connection, does not wait for a full send buffer; it is dropped and
// counted (dropped_frames_total{reason="send_buffer_full"}), beside the datagram itself.
func TestDatagramAnswerOverFullSendBuffer(t *testing.T) {
	b := testBus(t)
	nc, err := b.NewConn("edge")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Addr: "off", Limits: PeerLimits{RatePerSecond: -1}}
	e, err := New(cfg, Deps{Deps: service.Deps{Conn: nc}, Transports: []Transport{&idleTransport{done: make(chan struct{})}}})
	if err != nil {
		t.Fatal(err)
	}
	peer := &fullPeer{}
	e.Opened(peer)
	t.Cleanup(func() { e.Closed(peer, ErrPeerClosed); e.cancel(); e.wg.Wait() })
	e.Datagram(peer, frame(t, mxp.TypeEvent, 7, nil))
	if n := droppedMetric(e, dropSendBufferFull); n != 1 {
		t.Fatalf("dropped_frames_total{reason=send_buffer_full} = %v, want 1", n)
	}
	if n := droppedMetric(e, dropDatagram); n != 1 {
		t.Fatalf("dropped_frames_total{reason=datagram} = %v, want 1", n)
	}
}

// TestCompressedRefused: a frame with the COMPRESSED flag is refused with
// invalid_payload (docs/protocol.md) and counted, whatever its type; it is not routed as
// if plain. A compressed Response to a delivered Call fails that Call at once.
func TestCompressedRefused(t *testing.T) {
	bs := testBus(t)
	startFakeRegistry(t, bs)
	e := startEdge(t, bs, nil)
	target := dial(t, e.addr)
	targetID := registerAgent(t, target, "target")
	var got atomic.Int64
	go func() {
		for f := range target.Inbound() {
			if f.Type != mxp.TypeCall {
				continue
			}
			got.Add(1)
			// Answer compressed: the edge must refuse it and fail the caller's Call.
			_ = target.Send(context.Background(), &mxp.Frame{Type: mxp.TypeResponse, Flags: mxp.FlagCompressed,
				MessageID: f.MessageID, Payload: []byte("zz")})
		}
	}()

	raw, err := mxp.DialPlaintext(context.Background(), e.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	call := mxp.CallPayload{Target: targetID, Data: []byte("hello")}
	body, err := call.AppendPayload(nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, typ := range []mxp.MessageType{mxp.TypeCall, mxp.TypeEvent, mxp.TypeAgentDiscover} {
		payload := body
		if typ != mxp.TypeCall {
			payload = []byte(`{}`)
		}
		b, err := mxp.AppendFrame(nil, &mxp.Frame{Type: typ, Flags: mxp.FlagCompressed, MessageID: uint64(100 + i), Payload: payload})
		if err != nil {
			t.Fatal(err)
		}
		rawSendExpectError(t, raw, b, uint64(100+i), mxp.CodeInvalidPayload)
	}
	if n := got.Load(); n != 0 {
		t.Fatalf("a compressed Call was routed to its target (%d deliveries)", n)
	}
	if n := framesMetric(e.Edge, "Call", dirIn, string(mxp.CodeInvalidPayload)); n != 1 {
		t.Fatalf("frames_total{Call,in,invalid_payload} = %v", n)
	}

	caller := dial(t, e.addr)
	_, err = caller.CallAgent(ctxT(t), targetID, []byte("plain"), 0)
	var re *mxp.RemoteError
	if !asRemote(err, &re) || re.Code != mxp.CodeInvalidPayload {
		t.Fatalf("call answered compressed: err = %v, want invalid_payload", err)
	}
	if n := droppedMetric(e.Edge, "compressed"); n != 4 {
		t.Fatalf("dropped_frames_total{reason=compressed} = %v, want 4", n)
	}
}

// TestRegistrationsCappedPerSourceAddress: 100 plaintext sockets from one address, each
// registering its 64 agents (the per-connection cap), get max_agents_per_address (256)
// registrations in all; the rest are refused rate_limited and counted. The charge is
// given back when the connections end.
func TestRegistrationsCappedPerSourceAddress(t *testing.T) {
	bs := testBus(t)
	startFakeRegistry(t, bs)
	e := startEdge(t, bs, nil)
	const sockets, perSocket = 100, 64
	var ok, limited atomic.Int64
	var wg sync.WaitGroup
	clients := make([]*mxp.Conn, sockets)
	for i := range clients {
		clients[i] = dial(t, e.addr)
	}
	for _, c := range clients {
		wg.Go(func() {
			for j := range perSocket {
				_, err := c.Register(ctxT(t), mxp.RegisterRequest{ID: mxp.NewAgentID(), Name: "echo",
					Capabilities: []string{"echo"}, Metadata: mxp.AgentMetadata{Version: "1"}})
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, mxp.CodeRateLimited):
					limited.Add(1)
				default:
					t.Errorf("register %d: %v", j, err)
				}
			}
		})
	}
	wg.Wait()
	if ok.Load() != 256 || limited.Load() != sockets*perSocket-256 {
		t.Fatalf("%d registered, %d refused; want 256 and %d", ok.Load(), limited.Load(), sockets*perSocket-256)
	}
	if n := droppedMetric(e.Edge, "agents_per_address"); n != sockets*perSocket-256 {
		t.Fatalf("dropped_frames_total{reason=agents_per_address} = %v", n)
	}
	for _, c := range clients {
		c.Close()
	}
	e.stop() // ends every session: each gives its charge back
	if left := chargedSources(e.Edge); left != 0 {
		t.Fatalf("%d sources still charged after every connection ended", left)
	}
}
