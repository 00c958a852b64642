package edge

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/mxp-mesh/mesh/pkg/common/service"
	"github.com/mxp-mesh/mesh/pkg/mxp"
	"github.com/mxp-mesh/mesh/pkg/mxp/transport"
)

// memPeer is a Peer that keeps what the edge sends it.
type memPeer struct {
	mu   sync.Mutex
	sent [][]byte
}

func (p *memPeer) ID() string                 { return "mem:1" }
func (p *memPeer) Identity() string           { return "" }
func (p *memPeer) RemoteAddr() netip.AddrPort { return netip.MustParseAddrPort("127.0.0.1:1") }
func (p *memPeer) MaxFrame() int              { return 0 }
func (p *memPeer) Close() error               { return nil }
func (p *memPeer) Send(_ context.Context, b []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sent = append(p.sent, append([]byte(nil), b...))
	return nil
}

func (p *memPeer) take() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.sent
	p.sent = nil
	return out
}

// idleTransport serves nothing; it lets an Edge be built without sockets.
type idleTransport struct{ done chan struct{} }

func (t *idleTransport) Name() string        { return "idle" }
func (t *idleTransport) Serve(Handler) error { <-t.done; return nil }
func (t *idleTransport) Addr() net.Addr      { return &net.UDPAddr{} }
func (t *idleTransport) Close() error        { close(t.done); return nil }

// FuzzSessionHandle feeds arbitrary messages to a session: nothing panics, and a message
// that does not decode as exactly one frame is answered at once by one Error frame.
func FuzzSessionHandle(f *testing.F) {
	good, _ := mxp.AppendFrame(nil, &mxp.Frame{Type: mxp.TypeEvent, MessageID: 9, Payload: []byte("\x03a.b{}")})
	call, _ := (&mxp.CallPayload{Target: mxp.NewAgentID(), Data: []byte("x")}).AppendPayload(nil)
	callFrame, _ := mxp.AppendFrame(nil, &mxp.Frame{Type: mxp.TypeCall, MessageID: 10, Payload: call})
	reg, _ := mxp.AppendFrame(nil, &mxp.Frame{Type: mxp.TypeAgentRegister, MessageID: 11, Payload: []byte(`{"id":"x"}`)})
	zipped, _ := mxp.AppendFrame(nil, &mxp.Frame{Type: mxp.TypeCall, Flags: mxp.FlagCompressed, MessageID: 12, Payload: call})
	for _, seed := range [][]byte{nil, []byte("garbage"), good, callFrame, reg, append(good, 1), zipped} {
		f.Add(seed)
	}
	b := testBus(f)
	nc, err := b.NewConn("fuzz-edge")
	if err != nil {
		f.Fatal(err)
	}
	e, err := New(Config{Addr: "off", RegistryTimeout: 1}, Deps{Deps: service.Deps{Conn: nc}, Transports: []Transport{&idleTransport{done: make(chan struct{})}}})
	if err != nil {
		f.Fatal(err)
	}
	peer := &memPeer{}
	s := newSession(e, peer)
	f.Cleanup(func() { s.close(ErrPeerClosed); e.cancel(); e.wg.Wait() })
	f.Fuzz(func(t *testing.T, msg []byte) {
		peer.take()
		_, n, derr := mxp.Decode(msg)
		// The session keeps what it is handed (async requests read the payload later), as
		// with every transport; the fuzzer reuses msg, so hand over a copy.
		s.handle(inFrame{raw: append([]byte(nil), msg...)})
		if fr, _, _ := mxp.Decode(msg); derr == nil && n == len(msg) && fr.Flags.Has(mxp.FlagCompressed) {
			// COMPRESSED: refused at once with invalid_payload (an Error only counted).
			var refusals int
			for _, b := range peer.take() {
				out, _, err := mxp.Decode(b)
				if err != nil {
					t.Fatalf("answer does not decode: %v", err)
				}
				if ep, err := mxp.DecodeErrorPayload(out.Payload); err == nil && out.MessageID == fr.MessageID && ep.Code == mxp.CodeInvalidPayload {
					refusals++
				}
			}
			if want := map[bool]int{true: 0, false: 1}[fr.Type == mxp.TypeError]; refusals != want {
				t.Fatalf("compressed %s answered by %d invalid_payload Errors, want %d", fr.Type, refusals, want)
			}
			return
		}
		if derr == nil && n == len(msg) {
			return // a frame: answered now or later, by routing
		}
		// A valid frame of an earlier input may still be answered now (routing is
		// asynchronous: the registry's timeout or unreachable Error). Such late answers
		// carry routing codes; the answer to this input is the one invalid-frame Error.
		var answers int
		for _, b := range peer.take() {
			out, _, err := mxp.Decode(b)
			if err != nil || out.Type != mxp.TypeError {
				t.Fatalf("answer %v %v, want an Error frame", out.Type, err)
			}
			ep, err := mxp.DecodeErrorPayload(out.Payload)
			if err != nil {
				t.Fatalf("Error payload %q: %v", out.Payload, err)
			}
			if ep.Code == mxp.CodeInvalidFrame || ep.Code == mxp.CodeTooLarge {
				answers++
			}
		}
		if answers != 1 {
			t.Fatalf("undecodable message answered by %d invalid-frame Errors, want 1", answers)
		}
	})
}

// FuzzDatagram: anything a peer sends as a datagram is counted and answered by exactly
// one Error frame (the rate limit off), with the message id the bytes carry.
func FuzzDatagram(f *testing.F) {
	good, _ := mxp.AppendFrame(nil, &mxp.Frame{Type: mxp.TypeEvent, MessageID: 9, Payload: []byte("\x03a.b{}")})
	for _, seed := range [][]byte{nil, []byte("garbage"), good, append(good, 1)} {
		f.Add(seed)
	}
	b := testBus(f)
	nc, err := b.NewConn("fuzz-edge")
	if err != nil {
		f.Fatal(err)
	}
	cfg := Config{Addr: "off", Limits: PeerLimits{RatePerSecond: -1}}
	e, err := New(cfg, Deps{Deps: service.Deps{Conn: nc}, Transports: []Transport{&idleTransport{done: make(chan struct{})}}})
	if err != nil {
		f.Fatal(err)
	}
	peer := &memPeer{}
	e.Opened(peer)
	f.Cleanup(func() { e.Closed(peer, ErrPeerClosed); e.cancel(); e.wg.Wait() })
	f.Fuzz(func(t *testing.T, msg []byte) {
		peer.take()
		e.Datagram(peer, append([]byte(nil), msg...))
		sent := peer.take()
		if len(sent) != 1 {
			t.Fatalf("datagram answered by %d frames, want 1", len(sent))
		}
		out, _, err := mxp.Decode(sent[0])
		if err != nil || out.Type != mxp.TypeError || out.MessageID != peekID(msg) {
			t.Fatalf("answer %v for message %d (%v), want an Error for %d", out.Type, out.MessageID, err, peekID(msg))
		}
	})
}

// FuzzParseAllowKeys: any text yields keys or an error naming a line; the keys of an
// accepted text print back as lines that parse to the same keys.
func FuzzParseAllowKeys(f *testing.F) {
	f.Add("# team\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= # zero\n\n")
	f.Add("not a key\n")
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, text string) {
		keys, err := ParseAllowKeys(text)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "line ") {
				t.Fatalf("error without its line: %v", err)
			}
			return
		}
		var b strings.Builder
		for _, k := range keys {
			b.WriteString(k.String() + "\n")
		}
		back, err := ParseAllowKeys(b.String())
		if err != nil || len(back) != len(keys) {
			t.Fatalf("round trip: %d keys, %v", len(back), err)
		}
		for i := range keys {
			if back[i] != keys[i] {
				t.Fatalf("key %d changed", i)
			}
		}
	})
}

// FuzzTopicPattern: an accepted pattern maps to a NATS subject without empty tokens or
// whitespace, and never reaches the reserved topics.
func FuzzTopicPattern(f *testing.F) {
	for _, s := range []string{"a.b", "a.*", "a.>", ">", "*.*", "a..b", "_mxp.x", "a b", "a.>.b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if CheckTopicPattern(p) != nil {
			return
		}
		if strings.ContainsAny(p, " \t\r\n") || strings.Contains(p, "..") || strings.HasPrefix(p, ".") || strings.HasSuffix(p, ".") {
			t.Fatalf("accepted %q", p)
		}
		if strings.HasPrefix(p, reservedPrefix) {
			t.Fatalf("accepted reserved %q", p)
		}
		if i := strings.Index(p, ">"); i >= 0 && i != len(p)-1 {
			t.Fatalf("accepted %q with '>' not last", p)
		}
	})
}

// FuzzEarlyDatagrams: whatever the sequence of datagrams for connections not yet opened,
// the secure transport holds at most earlyDatagramsPerConn per connection and earlyConns
// connections, holds every datagram within those bounds, and refuses the others.
func FuzzEarlyDatagrams(f *testing.F) {
	f.Add([]byte{0, 0, 1, 2, 3})
	f.Add(bytes.Repeat([]byte{7}, 40))
	f.Add(func() []byte {
		b := make([]byte, 600)
		for i := range b {
			b[i] = byte(i)
		}
		return b
	}())
	f.Fuzz(func(t *testing.T, ops []byte) {
		var st SecureTransport
		conns := make([]*transport.Conn, 300) // open, unaccepted connections (zero Conn: no error)
		for i := range conns {
			conns[i] = &transport.Conn{}
		}
		want := map[*transport.Conn]int{}
		for i, op := range ops {
			// Two bytes name a connection out of 300 once the input is long enough.
			k := int(op)
			if i%2 == 1 {
				k += 256 * int(ops[i-1]&1)
			}
			c := conns[k%len(conns)]
			fits := want[c] < earlyDatagramsPerConn && (want[c] > 0 || len(want) < earlyConns)
			st.earlyMu.Lock()
			held := st.holdEarlyLocked(c, []byte{op})
			st.earlyMu.Unlock()
			if held != fits {
				t.Fatalf("op %d: held %v, want %v (%d held for the connection, %d connections)", i, held, fits, want[c], len(want))
			}
			if held {
				want[c]++
			}
		}
		if len(st.early) > earlyConns {
			t.Fatalf("%d connections hold early datagrams, over %d", len(st.early), earlyConns)
		}
		for c, q := range st.early {
			if len(q) != want[c] || len(q) > earlyDatagramsPerConn {
				t.Fatalf("a connection holds %d early datagrams, want %d (≤ %d)", len(q), want[c], earlyDatagramsPerConn)
			}
		}
	})
}
