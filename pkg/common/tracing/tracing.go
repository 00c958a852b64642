// Package tracing sets up the OpenTelemetry SDK for a service and carries trace context
// across NATS: W3C traceparent/tracestate in message headers, and the MXP trace id
// (Mxp-Trace-Id, 64 bits) mapped into the 128-bit OpenTelemetry trace id.
//
// Mapping (defined once, in package mxp: W3CTraceID, MessageSpanID): an MXP trace id T
// becomes the trace id whose first 8 bytes are zero and whose last 8 bytes are T
// big-endian (hex: 16 zeros then T as 16 hex digits). Back: the last 8 bytes of any trace
// id are its MXP trace id. So a trace started by an MXP agent keeps its id end to end,
// and a trace started elsewhere (an HTTP client with traceparent) still yields a stable
// MXP id (the low 64 bits). T = 0 means "no trace" in MXP and maps to the invalid trace
// id. A message with id M stands for the span M XOR T, so a sender that picks M from its
// span id (mxp.MessageIDForSpan) is the parent of the receiver's span.
//
// With OTEL_EXPORTER_OTLP_ENDPOINT set, spans are exported over OTLP/HTTP (the SDK reads
// the usual OTEL_EXPORTER_OTLP_* variables, and OTEL_TRACES_SAMPLER for the sampler);
// otherwise Setup returns a no-op provider: no span is recorded (recording spans nobody
// exports would only cost the hot paths), and context still travels (ids in logs and
// headers).
//
// It must not start spans on its own: services decide what to trace.
package tracing

import (
	"context"
	"os"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// Setup installs a TracerProvider for service (resource service.name "mxp-<service>") as
// the global one and returns it with its shutdown function (flushes pending spans). It
// also installs the W3C propagator globally. Without an OTLP endpoint in the environment
// the provider is a no-op one (see the package comment): services given its tracers skip
// their spans' work entirely (Enabled). A program calls it once: a process that runs
// several services uses one NewProvider instead (service.Process).
func Setup(ctx context.Context, service, version string) (trace.TracerProvider, func(context.Context) error, error) {
	tp, stop, err := NewProvider(ctx, "mxp-"+service, version, nil)
	if err != nil {
		return nil, nil, err
	}
	Install(tp)
	return tp, stop, nil
}

// Install makes tp the global TracerProvider and the W3C propagator the global one, for
// libraries that trace through the otel package.
func Install(tp trace.TracerProvider) {
	otel.SetTextMapPropagator(Propagator)
	otel.SetTracerProvider(tp)
}

// NewProvider returns a TracerProvider whose resource names the process (service.name
// name, service.version version) and its shutdown function, which flushes pending spans
// and stops exp; it installs nothing globally. Spans go to exp in batches; with a nil exp
// they go over OTLP/HTTP as the OTEL_* variables say, and without an endpoint there the
// provider is a no-op one that records nothing (its shutdown does nothing).
func NewProvider(ctx context.Context, name, version string, exp sdktrace.SpanExporter) (trace.TracerProvider, func(context.Context) error, error) {
	if exp == nil {
		if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
			return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
		}
		var err error
		if exp, err = otlptracehttp.New(ctx); err != nil {
			return nil, nil, err
		}
	}
	res := resource.NewSchemaless(semconv.ServiceName(name), semconv.ServiceVersion(version))
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithBatcher(exp))
	return tp, tp.Shutdown, nil
}

// ServiceKey is the attribute that names the service (module) a tracer belongs to when
// several share one process's provider: an instrumentation-scope attribute of the
// tracer ModuleTracer returns.
const ServiceKey = attribute.Key("mxp.service")

// ModuleTracer is service's tracer from a provider that several services of one process
// share: scope "mxp-<service>" with the scope attribute mxp.service=<service>, so each
// span names its service while the resource names the process.
func ModuleTracer(tp trace.TracerProvider, service string) trace.Tracer {
	return tp.Tracer("mxp-"+service, trace.WithInstrumentationAttributes(ServiceKey.String(service)))
}

// Enabled reports whether spans from t can be recorded: false for nil and for the no-op
// tracer (what Setup gives without an exporter, and service.Deps' default). A hot path
// keeps its tracer only when Enabled, and then pays nothing at all while tracing is off.
func Enabled(t trace.Tracer) bool {
	if t == nil {
		return false
	}
	_, isNoop := t.(noop.Tracer)
	return !isNoop
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

// TraceIDFromMXP maps an MXP trace id into an OTel trace id (mxp.W3CTraceID).
func TraceIDFromMXP(id uint64) trace.TraceID { return mxp.W3CTraceID(id) }

// MXPFromTraceID maps an OTel trace id back to an MXP trace id (its low 64 bits).
func MXPFromTraceID(t trace.TraceID) uint64 { return mxp.TraceIDOfW3C(t) }

// MessageContext returns ctx with the remote span context that MXP message msgID of
// trace traceID stands for (mxp.MessageSpanID), sampled: a span started from it is the
// child of the span that sent the message. ctx is returned as is when traceID is 0.
func MessageContext(ctx context.Context, traceID, msgID uint64) context.Context {
	if traceID == 0 {
		return ctx
	}
	return trace.ContextWithRemoteSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: mxp.W3CTraceID(traceID), SpanID: mxp.MessageSpanID(traceID, msgID),
		TraceFlags: trace.FlagsSampled, Remote: true,
	}))
}

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
	return MessageContext(ctx, tid, msgID)
}
