package edge

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/common/service"
	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// fakeInference answers mxp.inference.stream the way the inference service does (chunks
// with Mxp-Stream-Seq, then a terminal message), each request by the script the test gives,
// so the edge's relay is tested without importing the service.
type fakeInference struct {
	nc       *nats.Conn
	requests chan *nats.Msg
}

func startFakeInference(t testing.TB, b *bus.Bus, script func(nc *nats.Conn, req *nats.Msg)) *fakeInference {
	t.Helper()
	nc, err := b.NewConn("fake-inference")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	f := &fakeInference{nc: nc, requests: make(chan *nats.Msg, 16)}
	_, err = nc.QueueSubscribe(bus.SubjectInferenceStream, bus.QueueInference, func(m *nats.Msg) {
		select {
		case f.requests <- m: // the first few, for the tests that look at them
		default:
		}
		go script(nc, m)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return f
}

func publishChunk(nc *nats.Conn, reply string, seq int, body string) {
	_ = nc.PublishMsg(&nats.Msg{Subject: reply, Data: []byte(body), Header: nats.Header{bus.HeaderStreamSeq: {strconv.Itoa(seq)}}})
}

const testSummary = `{"model":"mock-1","provider":"mock","finish_reason":"stop","usage":{"input_tokens":3,"output_tokens":2}}`

// openServiceStream sends a StreamOpen to target with data and returns the stream id and
// the answer to the open.
func openServiceStream(t *testing.T, c *mxp.Conn, target mxp.AgentID, data string) (mxp.StreamID, error) {
	t.Helper()
	sid := mxp.NewStreamID()
	p := mxp.StreamOpenPayload{StreamID: sid, Target: target, Kind: mxp.StreamKindJSON, Data: []byte(data)}
	payload, _ := p.AppendPayload(nil)
	r, err := c.Request(ctxT(t), &mxp.Frame{Type: mxp.TypeStreamOpen, Payload: payload})
	if err == nil && r.Type != mxp.TypeResponse {
		t.Fatalf("StreamOpen answered with %s", r.Type)
	}
	return sid, err
}

// readServiceStream collects the chunks of stream sid until its StreamClose.
func readServiceStream(t *testing.T, c *mxp.Conn, sid mxp.StreamID) (chunks []string, closeErr *mxp.ErrorPayload) {
	t.Helper()
	for {
		f := nextStreamFrame(t, c)
		switch f.Type {
		case mxp.TypeStreamChunk:
			p, err := mxp.DecodeStreamChunk(f.Payload)
			if err != nil || p.StreamID != sid {
				t.Fatalf("chunk %v for stream %s, want %s", err, p.StreamID, sid)
			}
			chunks = append(chunks, string(p.Data))
		case mxp.TypeStreamClose:
			p, err := mxp.DecodeStreamClose(f.Payload)
			if err != nil || p.StreamID != sid {
				t.Fatalf("close %v for stream %s, want %s", err, p.StreamID, sid)
			}
			return chunks, p.Error
		default:
			t.Fatalf("unexpected %s on a service stream", f.Type)
		}
	}
}

func TestServiceStreamRelay(t *testing.T) {
	tests := []struct {
		name      string
		script    func(nc *nats.Conn, req *nats.Msg)
		noService bool
		want      []string
		wantCode  mxp.ErrorCode
	}{
		{
			name: "chunks then summary",
			script: func(nc *nats.Conn, req *nats.Msg) {
				publishChunk(nc, req.Reply, 0, `{"text":"Hello"}`)
				publishChunk(nc, req.Reply, 1, `{"text":" world"}`)
				publishChunk(nc, req.Reply, 2, `{"finish_reason":"stop","usage":{"input_tokens":3,"output_tokens":2}}`)
				_ = nc.Publish(req.Reply, []byte(testSummary))
			},
			want: []string{`{"text":"Hello"}`, `{"text":" world"}`, `{"finish_reason":"stop","usage":{"input_tokens":3,"output_tokens":2}}`, testSummary},
		},
		{
			name: "typed error from the service",
			script: func(nc *nats.Conn, req *nats.Msg) {
				_ = bus.PublishError(nc, req.Reply, bus.Errorf(mxp.CodeModelNotFound, "no model %q", "nope"))
			},
			wantCode: "model_not_found",
		},
		{
			name: "error after chunks",
			script: func(nc *nats.Conn, req *nats.Msg) {
				publishChunk(nc, req.Reply, 0, `{"text":"Hel"}`)
				_ = bus.PublishError(nc, req.Reply, bus.Errorf(mxp.CodeProviderError, "connection reset"))
			},
			want:     []string{`{"text":"Hel"}`},
			wantCode: "provider_error",
		},
		{
			name: "gap in the sequence",
			script: func(nc *nats.Conn, req *nats.Msg) {
				publishChunk(nc, req.Reply, 0, `{"text":"a"}`)
				publishChunk(nc, req.Reply, 2, `{"text":"c"}`)
				_ = nc.Publish(req.Reply, []byte(testSummary))
			},
			want:     []string{`{"text":"a"}`},
			wantCode: mxp.CodeUnavailable,
		},
		{
			name:      "no inference service on the bus",
			noService: true,
			wantCode:  mxp.CodeUnreachable,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := testBus(t)
			var fake *fakeInference
			if !tc.noService {
				fake = startFakeInference(t, b, tc.script)
			}
			e := startEdge(t, b, nil)
			c := dial(t, e.addr)
			sid, err := openServiceStream(t, c, mxp.ServiceInference, `{"model":"mock","messages":[{"role":"user","content":"hi"}]}`)
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			chunks, cerr := readServiceStream(t, c, sid)
			if strings.Join(chunks, "|") != strings.Join(tc.want, "|") {
				t.Errorf("chunks %q, want %q", chunks, tc.want)
			}
			switch {
			case tc.wantCode == "" && cerr != nil:
				t.Errorf("StreamClose error %+v, want a clean end", cerr)
			case tc.wantCode != "" && (cerr == nil || cerr.Code != tc.wantCode):
				t.Errorf("StreamClose error %+v, want code %s", cerr, tc.wantCode)
			}
			if fake != nil {
				req := <-fake.requests
				if string(req.Data) != `{"model":"mock","messages":[{"role":"user","content":"hi"}]}` {
					t.Errorf("the service got %q, want the StreamOpen's data", req.Data)
				}
				if dl, ok, _ := bus.Deadline(req.Header); !ok || time.Until(dl) < time.Minute {
					t.Errorf("request deadline %v (present %v), want about max_call_timeout away", dl, ok)
				}
			}
			waitFor(t, "the stream's end to leave the tables", func() bool { return testutil.ToFloat64(e.m.streams) == 0 })
		})
	}
}

func TestServiceStreamRefusals(t *testing.T) {
	b := testBus(t)
	startFakeInference(t, b, func(nc *nats.Conn, req *nats.Msg) {})
	e := startEdge(t, b, nil)
	c := dial(t, e.addr)
	tests := []struct {
		name     string
		target   mxp.AgentID
		data     string
		wantCode mxp.ErrorCode
		wantText string
	}{
		{"a service that takes only Calls", mxp.ServiceRegistry, `{}`, mxp.CodeUnreachable, "only inference"},
		{"no request", mxp.ServiceInference, ``, mxp.CodeInvalidPayload, "ChatRequest"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := openServiceStream(t, c, tc.target, tc.data)
			var re *mxp.RemoteError
			if !errors.As(err, &re) || re.Code != tc.wantCode || !strings.Contains(re.Message, tc.wantText) {
				t.Fatalf("open: %v, want %s mentioning %q", err, tc.wantCode, tc.wantText)
			}
		})
	}
	t.Run("chunks from the agent", func(t *testing.T) {
		sid, err := openServiceStream(t, c, mxp.ServiceInference, `{"model":"mock"}`)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Request(ctxT(t), chunkFrame(sid, []byte("more")))
		var re *mxp.RemoteError
		if !errors.As(err, &re) || re.Code != mxp.CodeInvalidPayload {
			t.Fatalf("chunk on a service stream: %v, want invalid_payload", err)
		}
	})
}

// TestServiceStreamCancel: the agent's StreamClose ends the relay at once: the inbox is
// unsubscribed (nothing more is relayed), the service is told to stop, and the edge keeps
// nothing of the stream.
func TestServiceStreamCancel(t *testing.T) {
	b := testBus(t)
	canceled := make(chan int, 1)
	startFakeInference(t, b, func(nc *nats.Conn, req *nats.Msg) {
		stop := make(chan struct{})
		sub, err := nc.Subscribe(req.Reply+bus.StreamCancelSuffix, func(*nats.Msg) { close(stop) })
		if err != nil {
			return
		}
		defer sub.Unsubscribe()
		_ = nc.Flush()
		for seq := 0; ; seq++ {
			publishChunk(nc, req.Reply, seq, `{"text":"x"}`)
			select {
			case <-stop:
				canceled <- seq
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	})
	e := startEdge(t, b, nil)
	c := dial(t, e.addr)
	baseline := e.nc.NumSubscriptions()
	sid, err := openServiceStream(t, c, mxp.ServiceInference, `{"model":"mock"}`)
	if err != nil {
		t.Fatal(err)
	}
	if f := nextStreamFrame(t, c); f.Type != mxp.TypeStreamChunk {
		t.Fatalf("first frame %s, want a chunk", f.Type)
	}
	if n := e.nc.NumSubscriptions(); n != baseline+1 {
		t.Fatalf("%d subscriptions while streaming, want %d", n, baseline+1)
	}
	cl, _ := (&mxp.StreamClosePayload{StreamID: sid}).AppendPayload(nil)
	if _, err := c.Request(ctxT(t), &mxp.Frame{Type: mxp.TypeStreamClose, Flags: mxp.FlagRequiresAck, Payload: cl}); err != nil {
		t.Fatalf("close: %v", err)
	}
	if n := e.nc.NumSubscriptions(); n != baseline {
		t.Errorf("%d subscriptions after the close, want %d (the inbox gone)", n, baseline)
	}
	if n := testutil.ToFloat64(e.m.streams); n != 0 {
		t.Errorf("mxp_edge_streams = %v after the close, want 0", n)
	}
	select {
	case <-canceled:
	case <-time.After(10 * time.Second):
		t.Fatal("the service was never told the stream ended")
	}
	// A chunk for the closed stream now would be refused as unknown.
	_, err = c.Request(ctxT(t), chunkFrame(sid, []byte("x")))
	var re *mxp.RemoteError
	if !errors.As(err, &re) || re.Code != mxp.CodeNotFound {
		t.Errorf("chunk after close: %v, want not_found", err)
	}
}

// TestServiceStreamSlowPeer: a connection that takes nothing while the service streams
// gets its buffered chunks and then a StreamClose with unavailable, and the edge holds no
// more than ServiceStreamBuffer chunks for it.
func TestServiceStreamSlowPeer(t *testing.T) {
	b := testBus(t)
	const sent = ServiceStreamBuffer + 200
	startFakeInference(t, b, func(nc *nats.Conn, req *nats.Msg) {
		for seq := range sent {
			publishChunk(nc, req.Reply, seq, `{"text":"x"}`)
		}
		_ = nc.Publish(req.Reply, []byte(testSummary))
	})
	tr := newGatedTransport()
	nc, err := b.NewConn("edge")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	te := startEdgeDeps(t, nc, tr)
	p := tr.peer
	te.Opened(p)
	sid := mxp.NewStreamID()
	op, _ := (&mxp.StreamOpenPayload{StreamID: sid, Target: mxp.ServiceInference, Kind: mxp.StreamKindJSON, Data: []byte(`{"model":"mock"}`)}).AppendPayload(nil)
	raw, _ := mxp.AppendFrame(nil, &mxp.Frame{Type: mxp.TypeStreamOpen, MessageID: 7, Payload: op})
	te.Frame(p, raw)
	if f := p.next(t); f.Type != mxp.TypeResponse || f.MessageID != 7 {
		t.Fatalf("open answered with %s %d", f.Type, f.MessageID)
	}
	// The peer takes nothing until the edge has given up on it.
	waitFor(t, "the overrun to be counted", func() bool {
		return testutil.ToFloat64(te.m.dropped.WithLabelValues("stream_slow_peer")) == 1
	})
	p.open()
	var chunks int
	for {
		f := p.next(t)
		if f.Type == mxp.TypeStreamChunk {
			chunks++
			continue
		}
		cl, err := mxp.DecodeStreamClose(f.Payload)
		if f.Type != mxp.TypeStreamClose || err != nil || cl.Error == nil || cl.Error.Code != mxp.CodeUnavailable {
			t.Fatalf("end: %s %+v %v, want StreamClose unavailable", f.Type, cl, err)
		}
		break
	}
	if chunks > ServiceStreamBuffer+1 || chunks < ServiceStreamBuffer-1 {
		t.Errorf("%d chunks delivered before the close, want about %d (the buffer)", chunks, ServiceStreamBuffer)
	}
	waitFor(t, "the stream to end", func() bool { return testutil.ToFloat64(te.m.streams) == 0 })
}

// gatedTransport has one peer whose Send blocks (after the first frame) until open.
type gatedTransport struct {
	peer   *gatedPeer
	closed chan struct{}
	once   sync.Once
}

func newGatedTransport() *gatedTransport {
	return &gatedTransport{peer: &gatedPeer{gate: make(chan struct{}), frames: make(chan mxp.Frame, 4*ServiceStreamBuffer)}, closed: make(chan struct{})}
}

func (g *gatedTransport) Name() string { return "gated" }
func (g *gatedTransport) Serve(Handler) error {
	<-g.closed
	return nil
}
func (g *gatedTransport) Addr() net.Addr { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)} }
func (g *gatedTransport) Close() error {
	g.once.Do(func() { close(g.closed) })
	return nil
}

type gatedPeer struct {
	gate   chan struct{}
	once   sync.Once
	sent   sync.Mutex
	first  bool
	frames chan mxp.Frame
}

func (p *gatedPeer) ID() string                 { return "gated:1" }
func (p *gatedPeer) Identity() string           { return "" }
func (p *gatedPeer) RemoteAddr() netip.AddrPort { return netip.MustParseAddrPort("127.0.0.1:1") }
func (p *gatedPeer) MaxFrame() int              { return 0 }
func (p *gatedPeer) Close() error               { return nil }
func (p *gatedPeer) open()                      { p.once.Do(func() { close(p.gate) }) }

func (p *gatedPeer) Send(ctx context.Context, b []byte) error {
	p.sent.Lock()
	first := !p.first
	p.first = true
	p.sent.Unlock()
	if !first {
		select {
		case <-p.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f, _, err := mxp.Decode(append([]byte(nil), b...))
	if err != nil {
		return err
	}
	p.frames <- f
	return nil
}

func (p *gatedPeer) next(t *testing.T) mxp.Frame {
	t.Helper()
	select {
	case f := <-p.frames:
		return f
	case <-time.After(10 * time.Second):
		t.Fatal("no frame for the peer")
		return mxp.Frame{}
	}
}

// startEdgeDeps runs an edge with only the given transport.
func startEdgeDeps(t *testing.T, nc *nats.Conn, tr Transport) *Edge {
	t.Helper()
	cfg := Config{Addr: "off"}
	e, err := New(cfg, Deps{Deps: service.Deps{Conn: nc, Logger: slog.New(slog.DiscardHandler)}, Transports: []Transport{tr}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = e.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "edge serving", func() bool { return e.serving.Load() })
	return e
}

// FuzzReadServiceMsg: any header and body of a service stream's message is classified
// without panicking; a chunk is only ever the expected sequence number; every error
// carries a code.
func FuzzReadServiceMsg(f *testing.F) {
	f.Add("0", "", "", "", []byte(`{"text":"hi"}`), 0)
	f.Add("2", "", "", "", []byte(`{"text":"hi"}`), 1)
	f.Add("", "", "", "", []byte(`{"model":"m","provider":"p"}`), 3)
	f.Add("", "503", "", "", []byte(nil), 0)
	f.Add("", "", "no model", "404", []byte(`{"error":"no model","code":"model_not_found"}`), 0)
	f.Add("-1", "", "", "x", []byte("\xff"), -1)
	f.Fuzz(func(t *testing.T, seq, status, errText, errCode string, data []byte, want int) {
		h := nats.Header{}
		for k, v := range map[string]string{bus.HeaderStreamSeq: seq, "Status": status,
			"Nats-Service-Error": errText, "Nats-Service-Error-Code": errCode} {
			if v != "" {
				h.Set(k, v)
			}
		}
		kind, ep := readServiceMsg(h, data, want, bus.SubjectInferenceStream)
		switch kind {
		case svcChunk:
			if n, err := strconv.Atoi(seq); err != nil || n != want || ep != nil {
				t.Fatalf("chunk %q accepted as number %d (ep %+v)", seq, want, ep)
			}
		case svcGap:
			if ep == nil || ep.Code == "" {
				t.Fatalf("gap without an error: %+v", ep)
			}
		case svcEnd:
			if seq != "" {
				t.Fatalf("a numbered message %q taken as the end", seq)
			}
			if ep != nil && ep.Code == "" {
				t.Fatalf("an error without a code: %+v", ep)
			}
		default:
			t.Fatalf("kind %d", kind)
		}
	})
}

// TestServiceStreamDeadline: a service that never finishes is cut off at the stream's
// deadline (max_call_timeout from the open) with timeout, and told to stop.
func TestServiceStreamDeadline(t *testing.T) {
	b := testBus(t)
	canceled := make(chan struct{})
	startFakeInference(t, b, func(nc *nats.Conn, req *nats.Msg) {
		sub, err := nc.Subscribe(req.Reply+bus.StreamCancelSuffix, func(*nats.Msg) { close(canceled) })
		if err != nil {
			return
		}
		_ = nc.Flush()
		publishChunk(nc, req.Reply, 0, `{"text":"thinking"}`)
		<-canceled
		_ = sub.Unsubscribe()
	})
	e := startEdge(t, b, func(c *Config) { c.MaxCallTimeout = 300 * time.Millisecond })
	c := dial(t, e.addr)
	sid, err := openServiceStream(t, c, mxp.ServiceInference, `{"model":"mock"}`)
	if err != nil {
		t.Fatal(err)
	}
	chunks, cerr := readServiceStream(t, c, sid)
	if len(chunks) != 1 || cerr == nil || cerr.Code != mxp.CodeTimeout {
		t.Fatalf("chunks %q, close %+v; want one chunk then timeout", chunks, cerr)
	}
	select {
	case <-canceled:
	case <-time.After(10 * time.Second):
		t.Fatal("the service was never told the stream ended")
	}
}

// BenchmarkServiceStream measures one model stream of 64 chunks and its summary from a
// service on the bus to an MXP client through the edge over the secure transport, against
// the same stream read straight off the bus in the same process (x_baseline is the ratio
// of the two).
func BenchmarkServiceStream(b *testing.B) {
	const chunks = 64
	bs := testBus(b)
	startFakeInference(b, bs, func(nc *nats.Conn, req *nats.Msg) {
		for seq := range chunks {
			publishChunk(nc, req.Reply, seq, `{"text":"token "}`)
		}
		_ = nc.Publish(req.Reply, []byte(testSummary))
	})
	te, key := startSecureEdge(b, bs)
	c := dialSecure(b, te.addr, key)
	ctx := context.Background()
	request := []byte(`{"model":"mock","messages":[{"role":"user","content":"hi"}]}`)

	viaEdge := func() error {
		sid := mxp.NewStreamID()
		p, _ := (&mxp.StreamOpenPayload{StreamID: sid, Target: mxp.ServiceInference, Kind: mxp.StreamKindJSON, Data: request}).AppendPayload(nil)
		if _, err := c.Request(ctx, &mxp.Frame{Type: mxp.TypeStreamOpen, Payload: p}); err != nil {
			return err
		}
		n := 0
		for f := range c.Inbound() {
			switch f.Type {
			case mxp.TypeStreamChunk:
				n++
			case mxp.TypeStreamClose:
				if n != chunks+1 {
					return errors.New("stream closed after " + strconv.Itoa(n) + " chunks")
				}
				return nil
			}
		}
		return errors.New("connection closed")
	}
	nc, err := bs.NewConn("bench-direct")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	direct := func() error {
		inbox := nc.NewInbox()
		sub, err := nc.SubscribeSync(inbox)
		if err != nil {
			return err
		}
		defer sub.Unsubscribe()
		if err := nc.PublishRequest(bus.SubjectInferenceStream, inbox, request); err != nil {
			return err
		}
		for {
			m, err := sub.NextMsg(10 * time.Second)
			if err != nil {
				return err
			}
			if m.Header.Get(bus.HeaderStreamSeq) == "" {
				return nil
			}
		}
	}
	measure := func(b *testing.B, fn func() error) time.Duration {
		start := time.Now()
		for b.Loop() {
			if err := fn(); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(start) / time.Duration(b.N)
	}
	var base time.Duration
	b.Run("bus-direct", func(b *testing.B) { base = measure(b, direct) })
	b.Run("edge-secure", func(b *testing.B) {
		b.ReportAllocs()
		per := measure(b, viaEdge)
		b.ReportMetric(float64(chunks+1)/per.Seconds(), "chunks/s")
		if base > 0 {
			b.ReportMetric(float64(per)/float64(base), "x_baseline")
		}
	})
}
