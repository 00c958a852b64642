// Package tracing sets up the OpenTelemetry SDK for a service and carries trace context
// across NATS: W3C traceparent/tracestate in message headers, and the MXP trace id
// (Mxp-Trace-Id, 64 bits) mapped into the 128-bit OpenTelemetry trace id.
//
// Mapping: an MXP trace id T becomes the trace id whose first 8 bytes are zero and whose
// last 8 bytes are T big-endian (hex: 16 zeros then T as 16 hex digits). Back: the last 8
// bytes of any trace id are its MXP trace id. So a trace started by an MXP agent keeps its
// id end to end, and a trace started elsewhere (an HTTP client with traceparent) still
// yields a stable MXP id (the low 64 bits). T = 0 means "no trace" in MXP and maps to the
// invalid trace id.
//
// With OTEL_EXPORTER_OTLP_ENDPOINT set, spans are exported over OTLP/HTTP (the SDK reads
// the usual OTEL_EXPORTER_OTLP_* variables); otherwise no exporter is installed and spans
// only carry context (ids in logs and headers).
//
// It must not start spans on its own: services decide what to trace.
package tracing

import (
	"context"
	"encoding/binary"
	"os"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
)

// Setup installs a TracerProvider for service and returns it with its shutdown function
// (flushes pending spans). It also installs the W3C propagator globally.
func Setup(ctx context.Context, service, version string) (*sdktrace.TracerProvider, func(context.Context) error, error) {
	res := resource.NewSchemaless(semconv.ServiceName("mxp-"+service), semconv.ServiceVersion(version))
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" {
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			return nil, nil, err
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(Propagator)
	return tp, tp.Shutdown, nil
}

// Propagator is W3C Trace Context plus Baggage.
var Propagator propagation.TextMapPropagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// HeaderCarrier adapts nats.Header (case-sensitive) to the OTel TextMapCarrier, keeping
// the lower-case W3C header names other NATS clients look for.
type HeaderCarrier nats.Header

// Get implements propagation.TextMapCarrier.
func (c HeaderCarrier) Get(key string) string { return nats.Header(c).Get(key) }

// Set implements propagation.TextMapCarrier.
func (c HeaderCarrier) Set(key, value string) { nats.Header(c).Set(key, value) }

// Keys implements propagation.TextMapCarrier.
func (c HeaderCarrier) Keys() []string {
	out := make([]string, 0, len(c))
	for k := range c {
		out = append(out, k)
	}
	return out
}

// TraceIDFromMXP maps an MXP trace id into an OTel trace id (see the package comment).
func TraceIDFromMXP(id uint64) trace.TraceID {
	var t trace.TraceID
	binary.BigEndian.PutUint64(t[8:], id)
	return t
}

// MXPFromTraceID maps an OTel trace id back to an MXP trace id (its low 64 bits).
func MXPFromTraceID(t trace.TraceID) uint64 { return binary.BigEndian.Uint64(t[8:]) }

// Inject writes ctx's span context into h: traceparent (and tracestate), and
// Mxp-Trace-Id when absent.
func Inject(ctx context.Context, h nats.Header) {
	Propagator.Inject(ctx, HeaderCarrier(h))
	if h.Get(bus.HeaderTraceID) == "" {
		if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
			bus.SetTraceID(h, MXPFromTraceID(sc.TraceID()))
		}
	}
}

// Extract returns ctx with the remote span context carried by h. traceparent wins; when
// only Mxp-Trace-Id is present (an MXP frame translated by the edge), the remote parent
// has the mapped trace id and a span id derived from the MXP message id, so spans of the
// request join the agent's trace.
func Extract(ctx context.Context, h nats.Header) context.Context {
	ctx = Propagator.Extract(ctx, HeaderCarrier(h))
	if trace.SpanContextFromContext(ctx).IsValid() {
		return ctx
	}
	tid, ok, err := bus.TraceID(h)
	if !ok || err != nil || tid == 0 {
		return ctx
	}
	msgID, _, _ := bus.MsgID(h)
	var sid trace.SpanID
	binary.BigEndian.PutUint64(sid[:], msgID^tid|1) // non-zero
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: TraceIDFromMXP(tid), SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true,
	})
	return trace.ContextWithRemoteSpanContext(ctx, sc)
}
