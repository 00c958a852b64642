package edge

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	cmetrics "github.com/mxp-mesh/mesh/pkg/common/metrics"
	"github.com/mxp-mesh/mesh/pkg/common/service"
	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// startTracedEdge is an edge whose spans end up in the returned recorder.
func startTracedEdge(t *testing.T, bs *bus.Bus) (*testEdge, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	te := startEdgeWith(t, bs, Config{CompatAddr: "127.0.0.1:0", Addr: "off"}, service.Deps{Tracer: tp.Tracer("edge")})
	return te, rec
}

// recordCalls answers each Call on c with its data (an Error forbidden for "fail"),
// after sending the delivered frame on got.
func recordCalls(c *mxp.Conn, got chan<- mxp.Frame) {
	serveCalls(c, func(f mxp.Frame, data []byte) ([]byte, mxp.ErrorCode) {
		got <- f
		if string(data) == "fail" {
			return nil, mxp.CodeForbidden
		}
		return data, ""
	})
}

// ended returns the ended span named name, waiting for it (the edge ends a span after
// it sends the answer the test waited for).
func ended(t *testing.T, rec *tracetest.SpanRecorder, name string, n int) []sdktrace.ReadOnlySpan {
	t.Helper()
	var out []sdktrace.ReadOnlySpan
	waitFor(t, "span "+name, func() bool {
		out = out[:0]
		for _, s := range rec.Ended() {
			if s.Name() == name {
				out = append(out, s)
			}
		}
		return len(out) >= n
	})
	return out
}

// A Call through a tracing edge: the edge's call span is the child of the span the
// caller's message stands for, the delivery span the child of the call span (across the
// bus, by traceparent), and the frame delivered to the callee stands for the delivery
// span; all in the caller's MXP trace. An agent's Error marks the delivery and call spans.
func TestEdgeSpansOfACall(t *testing.T) {
	bs := testBus(t)
	startFakeRegistry(t, bs)
	te, rec := startTracedEdge(t, bs)
	a, b := dial(t, te.addr), dial(t, te.addr)
	bID := registerAgent(t, b, "bob", "echo")
	delivered := make(chan mxp.Frame, 4)
	recordCalls(b, delivered)
	toAgent := captureHeaders(t, bs, bus.AgentSubject(bID.String(), bus.AgentVerbCall))
	ctx := ctxT(t)

	const traceID, msgID = 0x1122334455667788, 0x0a0b0c0d0e0f1011
	call := func(data string) (mxp.Frame, error) {
		cp := mxp.CallPayload{Target: bID, TimeoutSeconds: 5, Data: []byte(data)}
		payload, _ := cp.AppendPayload(nil)
		return a.Request(ctx, &mxp.Frame{Type: mxp.TypeCall, MessageID: msgID, TraceID: traceID, Payload: payload})
	}
	if r, err := call("traced"); err != nil || string(r.Payload) != "traced" {
		t.Fatalf("call = %q, %v", r.Payload, err)
	}
	df := <-delivered
	callSpan := ended(t, rec, "edge.call", 1)[0]
	deliver := ended(t, rec, spanDeliver, 1)[0]

	want := trace.TraceID(mxp.W3CTraceID(traceID))
	for _, s := range []sdktrace.ReadOnlySpan{callSpan, deliver} {
		if s.SpanContext().TraceID() != want {
			t.Fatalf("%s in trace %s, want %s", s.Name(), s.SpanContext().TraceID(), want)
		}
		if s.Status().Code == codes.Error {
			t.Fatalf("%s has status %v", s.Name(), s.Status())
		}
	}
	if got := callSpan.Parent().SpanID(); got != trace.SpanID(mxp.MessageSpanID(traceID, msgID)) {
		t.Fatalf("edge.call's parent %s, want the caller's message span %x", got, mxp.MessageSpanID(traceID, msgID))
	}
	if callSpan.SpanKind() != trace.SpanKindServer || deliver.SpanKind() != trace.SpanKindClient {
		t.Fatalf("kinds: call %v, deliver %v", callSpan.SpanKind(), deliver.SpanKind())
	}
	if deliver.Parent().SpanID() != callSpan.SpanContext().SpanID() {
		t.Fatalf("edge.deliver's parent %s, want edge.call %s", deliver.Parent().SpanID(), callSpan.SpanContext().SpanID())
	}
	if df.TraceID != traceID {
		t.Fatalf("delivered frame's trace id %x, want %x", df.TraceID, uint64(traceID))
	}
	if got := trace.SpanID(mxp.MessageSpanID(df.TraceID, df.MessageID)); got != deliver.SpanContext().SpanID() {
		t.Fatalf("the delivered frame (id %x) stands for span %s, want edge.deliver %s", df.MessageID, got, deliver.SpanContext().SpanID())
	}
	// The Call on the bus carries the call span as traceparent: that is how the
	// delivering edge (here the same one) parents its span.
	h := nextHeader(t, toAgent)
	if got, want := h.Get(bus.HeaderTraceparent), formatTraceparent(callSpan.SpanContext().TraceID(), callSpan.SpanContext().SpanID(), true); got != want {
		t.Fatalf("traceparent on the bus %q, want %q", got, want)
	}

	// The agent's Error ends both spans in error, with its code.
	if _, err := call("fail"); mxp.ErrorCodeFor(err) != mxp.CodeForbidden {
		t.Fatalf("failing call: %v", err)
	}
	<-delivered
	for _, name := range []string{"edge.call", spanDeliver} {
		s := ended(t, rec, name, 2)[1]
		if s.Status().Code != codes.Error || s.Status().Description != string(mxp.CodeForbidden) {
			t.Fatalf("%s status %+v, want error %s", name, s.Status(), mxp.CodeForbidden)
		}
	}
}

// An edge without a tracer starts no span, puts no traceparent on Calls to agents and
// numbers delivered Calls with its own ids (the high half of the id space).
func TestEdgeWithoutTracerKeepsItsIDs(t *testing.T) {
	bs := testBus(t)
	startFakeRegistry(t, bs)
	te := startEdge(t, bs, nil)
	if te.tracer != nil {
		t.Fatal("an edge without a tracer has one")
	}
	a, b := dial(t, te.addr), dial(t, te.addr)
	bID := registerAgent(t, b, "bob", "echo")
	delivered := make(chan mxp.Frame, 1)
	recordCalls(b, delivered)
	if _, err := a.CallAgent(ctxT(t), bID, []byte("x"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if df := <-delivered; df.MessageID < 1<<63 {
		t.Fatalf("delivered id %x is not one of the edge's", df.MessageID)
	}
}

// A tracer that makes no span of its own (the global delegate before a provider is set)
// hands back the parent: the edge then numbers delivered Calls itself, or every delivery
// under one parent would get the same id.
func TestPassThroughTracerKeepsDeliveryIDs(t *testing.T) {
	bs := testBus(t)
	startFakeRegistry(t, bs)
	te := startEdgeWith(t, bs, Config{CompatAddr: "127.0.0.1:0", Addr: "off"}, service.Deps{Tracer: otel.Tracer("edge")})
	if te.tracer == nil {
		t.Fatal("the global tracer was taken for a no-op one")
	}
	a, b := dial(t, te.addr), dial(t, te.addr)
	bID := registerAgent(t, b, "bob", "echo")
	delivered := make(chan mxp.Frame, 1)
	recordCalls(b, delivered)
	cp := mxp.CallPayload{Target: bID, TimeoutSeconds: 5, Data: []byte("x")}
	payload, _ := cp.AppendPayload(nil)
	if _, err := a.Request(ctxT(t), &mxp.Frame{Type: mxp.TypeCall, MessageID: 9, TraceID: 0x77, Payload: payload}); err != nil {
		t.Fatal(err)
	}
	if df := <-delivered; df.MessageID < 1<<63 || df.TraceID != 0x77 {
		t.Fatalf("delivered id %x (trace %x): not one of the edge's own", df.MessageID, df.TraceID)
	}
}

// The delivery queue gauges read the queues: a Call held in the edge's agent message
// queue shows in mxp_edge_agent_messages_queued until a worker takes it.
func TestQueueGauges(t *testing.T) {
	bs := testBus(t)
	reg := cmetrics.NewRegistry("edge")
	te := startEdgeWith(t, bs, Config{CompatAddr: "127.0.0.1:0", Addr: "off"}, service.Deps{Metrics: reg})
	gauge := func(name string) float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == name && len(mf.GetMetric()) == 1 {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatalf("no gauge %s", name)
		return 0
	}
	if got := gauge("mxp_edge_agent_messages_queued"); got != 0 {
		t.Fatalf("idle agent message queue depth %v", got)
	}
	// Fill the queue directly (its workers take messages as fast as they come, so a
	// real backlog cannot be held still without stopping them): the gauge reads len.
	te.stop()
	for range 3 {
		te.agentMsgs <- &nats.Msg{Subject: "x"}
	}
	if got := gauge("mxp_edge_agent_messages_queued"); got != 3 {
		t.Fatalf("agent message queue depth %v, want 3", got)
	}
	s := newSession(te.Edge, discardPeer{})
	s.delivering.Add(2)
	s.queue.push(inFrame{raw: []byte("frame")})
	te.mu.Lock()
	te.sessions[discardPeer{}] = s
	te.mu.Unlock()
	if got := gauge("mxp_edge_deliveries_queued"); got != 2 {
		t.Fatalf("deliveries queued %v, want 2", got)
	}
	if got := gauge("mxp_edge_frames_queued"); got != 1 {
		t.Fatalf("frames queued %v, want 1", got)
	}
}

// BenchmarkCallSpans is the edge's tracing work for one Call through the mesh (the
// caller's edge's request span and its traceparent, the callee's edge's delivery span
// taken from it and the delivered id), after the Call's bus headers (the bookkeeping of
// BenchmarkCallBookkeeping) for scale: off (no provider: what every edge without an OTLP
// endpoint runs), sampled (spans recorded and batched to a discarding exporter), and
// not sampled (a provider whose sampler drops everything).
func BenchmarkCallSpans(b *testing.B) {
	te := startEdge(b, testBus(b), nil)
	s := newSession(te.Edge, discardPeer{})
	target := mxp.NewAgentID()
	deadline := time.Now().Add(time.Minute)
	for _, tc := range []struct {
		name    string
		sampler sdktrace.Sampler
	}{{"off", nil}, {"sampled", sdktrace.AlwaysSample()}, {"not-sampled", sdktrace.NeverSample()}} {
		b.Run(tc.name, func(b *testing.B) {
			te.tracer = nil
			if tc.sampler != nil {
				tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(tc.sampler), sdktrace.WithBatcher(tracetest.NewNoopExporter()))
				b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
				te.tracer = tp.Tracer("edge")
			}
			b.ReportAllocs()
			for i := range b.N {
				f := &mxp.Frame{Type: mxp.TypeCall, MessageID: uint64(i) + 1, TraceID: 0x0123456789abcdef}
				h := s.headers(f, deadline, false)
				span := s.startRequestSpan(f, "mxp.agent.x.call", h)
				d := s.startDeliverySpan(h, target, trace.SpanKindClient)
				_ = deliveryID(d, f.TraceID)
				endSpan(d, "")
				endSpan(span, "")
			}
		})
	}
}
