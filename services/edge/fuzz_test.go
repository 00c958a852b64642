package edge

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/mxp-mesh/mesh/pkg/common/service"
	"github.com/mxp-mesh/mesh/pkg/mxp"
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
	for _, seed := range [][]byte{nil, []byte("garbage"), good, callFrame, reg, append(good, 1)} {
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
