package edge

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/common/tracing"
	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// captureHeaders subscribes subject on a connection of its own and returns the headers of
// the messages published there.
func captureHeaders(t *testing.T, bs *bus.Bus, subject string) <-chan nats.Header {
	t.Helper()
	nc, err := bs.NewConn("capture")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	got := make(chan nats.Header, 16)
	if _, err := nc.Subscribe(subject, func(m *nats.Msg) { got <- m.Header }); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return got
}

func nextHeader(t *testing.T, ch <-chan nats.Header) nats.Header {
	t.Helper()
	select {
	case h := <-ch:
		return h
	case <-time.After(10 * time.Second):
		t.Fatal("no message on the captured subject")
		return nil
	}
}

// A traced Call to an agent goes without traceparent, and the span context a service
// would extract from its Mxp-Trace-Id and Mxp-Msg-Id is the one traceparent carried; a
// Call to a service keeps traceparent.
func TestTraceHeadersOfCalls(t *testing.T) {
	if *traceEdges {
		t.Skip("asserts the headers of an edge that does not trace")
	}
	bs := testBus(t)
	startFakeRegistry(t, bs)
	te := startEdge(t, bs, nil)
	a, b := dial(t, te.addr), dial(t, te.addr)
	bID := registerAgent(t, b, "bob", "echo")
	serveEcho(b, nil)
	ctx := ctxT(t)

	toAgent := captureHeaders(t, bs, bus.AgentSubject(bID.String(), bus.AgentVerbCall))
	if _, err := a.CallAgent(ctx, bID, []byte("traced"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	h := nextHeader(t, toAgent)
	if v := h.Get(bus.HeaderTraceparent); v != "" {
		t.Fatalf("a Call to an agent carries traceparent %q", v)
	}
	tid, ok, err := bus.TraceID(h)
	if !ok || err != nil || tid == 0 {
		t.Fatalf("Mxp-Trace-Id = %q (%v)", h.Get(bus.HeaderTraceID), err)
	}
	msgID, ok, err := bus.MsgID(h)
	if !ok || err != nil {
		t.Fatalf("Mxp-Msg-Id = %q (%v)", h.Get(bus.HeaderMsgID), err)
	}
	fromIDs := trace.SpanContextFromContext(tracing.Extract(context.Background(), h))
	w3c := nats.Header{}
	w3c.Set(bus.HeaderTraceparent, traceparent(tid, msgID))
	fromW3C := trace.SpanContextFromContext(tracing.Extract(context.Background(), w3c))
	if !fromW3C.IsValid() || !fromIDs.Equal(fromW3C.WithRemote(true)) {
		t.Fatalf("span context from the MXP headers %v, from traceparent %v", fromIDs, fromW3C)
	}

	toService := captureHeaders(t, bs, "mxp.registry.discover")
	if _, err := a.CallAgent(ctx, mxp.ServiceRegistry, []byte(`{"capability":"echo"}`), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	h = nextHeader(t, toService)
	tid, _, _ = bus.TraceID(h)
	msgID, _, _ = bus.MsgID(h)
	if got, want := h.Get(bus.HeaderTraceparent), traceparent(tid, msgID); tid == 0 || got != want {
		t.Fatalf("a Call to a service carries traceparent %q, want %q", got, want)
	}
}
