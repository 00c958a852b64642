package agent

import (
	"context"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// Without a provider, a request's ids are the link's own and the trace is ctx's.
func TestRequestIDsUntraced(t *testing.T) {
	a, err := New(Config{Name: "t"})
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Uint64
	ctx := WithMeta(context.Background(), Meta{TraceID: 77})
	ctx, span := a.startRequest(ctx, "agent.call", "x")
	if span != nil {
		t.Fatal("a span without a provider")
	}
	if id, tr := requestIDs(ctx, func() uint64 { return n.Add(1) }); id != 1 || tr != 77 {
		t.Fatalf("ids %d, trace %d", id, tr)
	}
}

// A provider that makes no span of its own (the no-op one, or the global one before the
// application sets its provider) hands back the parent's span context: requests made
// under one parent must not all take the id derived from it (mxp.Conn refuses an id
// already in flight).
func TestNoopProviderKeepsRequestIDsApart(t *testing.T) {
	a, err := New(Config{Name: "t", TracerProvider: noop.NewTracerProvider()})
	if err != nil {
		t.Fatal(err)
	}
	const traceID = 0x77
	parent := trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: mxp.W3CTraceID(traceID), SpanID: mxp.MessageSpanID(traceID, 5), TraceFlags: trace.FlagsSampled, Remote: true}))
	var n atomic.Uint64
	seen := map[uint64]bool{}
	for range 3 {
		ctx, span := a.startRequest(parent, "agent.call", "x")
		id, tr := requestIDs(ctx, func() uint64 { return n.Add(1) })
		endSpan(span, nil)
		if tr != traceID {
			t.Fatalf("trace %x, want the parent's %x", tr, traceID)
		}
		if seen[id] {
			t.Fatalf("message id %x given twice under one parent", id)
		}
		seen[id] = true
	}
}
