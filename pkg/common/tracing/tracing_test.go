package tracing

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
)

func TestMapping(t *testing.T) {
	for _, id := range []uint64{1, 0xdeadbeefcafebabe, ^uint64(0)} {
		tid := TraceIDFromMXP(id)
		if !tid.IsValid() || MXPFromTraceID(tid) != id {
			t.Fatalf("%x → %s → %x", id, tid, MXPFromTraceID(tid))
		}
	}
	if TraceIDFromMXP(0).IsValid() {
		t.Fatal("MXP trace id 0 must map to the invalid trace id")
	}
	if got := TraceIDFromMXP(0xab).String(); got != "000000000000000000000000000000ab" {
		t.Fatalf("hex form %s", got)
	}
}

func TestPropagationOverHeaders(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	tr := tp.Tracer("test")

	t.Run("traceparent round trip", func(t *testing.T) {
		ctx, span := tr.Start(context.Background(), "client")
		h := nats.Header{}
		Inject(ctx, h)
		span.End()
		if h.Get("traceparent") == "" {
			t.Fatalf("no lower-case traceparent header: %v", h)
		}
		if id, ok, _ := bus.TraceID(h); !ok || id != MXPFromTraceID(span.SpanContext().TraceID()) {
			t.Fatal("Mxp-Trace-Id not set from the span")
		}
		sctx, child := tr.Start(Extract(context.Background(), h), "server")
		child.End()
		if trace.SpanContextFromContext(sctx).TraceID() != span.SpanContext().TraceID() {
			t.Fatal("server span not in the client's trace")
		}
	})
	t.Run("mxp trace id only", func(t *testing.T) {
		h := nats.Header{}
		bus.SetTraceID(h, 0x1234)
		bus.SetMsgID(h, 99)
		_, span := tr.Start(Extract(context.Background(), h), "server")
		span.End()
		if span.SpanContext().TraceID() != TraceIDFromMXP(0x1234) {
			t.Fatalf("trace id %s", span.SpanContext().TraceID())
		}
	})
	t.Run("nothing", func(t *testing.T) {
		if trace.SpanContextFromContext(Extract(context.Background(), nats.Header{bus.HeaderTraceID: {"zz"}})).IsValid() {
			t.Fatal("bad header must not yield a span context")
		}
	})
}

func TestEnabled(t *testing.T) {
	if Enabled(nil) {
		t.Fatal("nil tracer enabled")
	}
	if !Enabled(sdktrace.NewTracerProvider().Tracer("x")) {
		t.Fatal("SDK tracer not enabled")
	}
}

func TestSetupWithoutExporter(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	tp, shutdown, err := Setup(context.Background(), "test", "0.0.0")
	if err != nil || tp == nil {
		t.Fatal(err)
	}
	if Enabled(tp.Tracer("test")) {
		t.Fatal("without an exporter the provider records spans nobody exports")
	}
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}
