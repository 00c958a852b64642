package agent

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// Tracing. With Config.TracerProvider set, the agent starts a client span for each Call it
// makes ("agent.call") and each Discover ("agent.discover"), a producer span for each
// Event it publishes ("agent.publish"), and a server span for each Call, Event or stream its handlers
// serve ("agent.handle"); without it nothing here runs. The SDK uses the OpenTelemetry API
// only: the application brings the provider (and with it the SDK and exporter it wants).
//
// The spans join the mesh's trace through the MXP frame, which carries a 64-bit trace id
// and no span id (package mxp, trace.go): a traced Call's message id is picked from its
// span id (mxp.MessageIDForSpan), so the edge's span is its child, and a handler's span
// is the child of the span the delivered message stands for (mxp.MessageSpanID), the
// edge's delivery span. A trace the frame cannot carry (a parent span whose trace id has
// a non-zero high half, or no parent at all) continues in the MXP trace of its low 64
// bits (a new random one without a parent): the call span's parent is then the remote
// span of that id in the MXP trace (the parent's own span id; the trace's own id for a
// new trace, which nobody exports), and it links to the caller's span.

// tracerName is the instrumentation scope of the SDK's spans.
const tracerName = "github.com/mxp-mesh/mesh/pkg/agent"

// spanPublish names the span of an Event the agent publishes.
const spanPublish = "agent.publish"

// callIDsKey carries the ids a traced request is sent with, from startRequest to the
// link.
type callIDsKey struct{}

type callIDs struct{ msg, trace uint64 } // msg 0: none picked

// requestIDs returns the message and trace id of a request made from ctx: those
// startRequest picked for a traced request, else newID's and the trace of ctx (traceFor).
func requestIDs(ctx context.Context, newID func() uint64) (msgID, traceID uint64) {
	if ids, ok := ctx.Value(callIDsKey{}).(callIDs); ok {
		if ids.msg == 0 {
			ids.msg = newID()
		}
		return ids.msg, ids.trace
	}
	return newID(), traceFor(ctx)
}

// startRequest starts the client span (named name: agent.call, agent.discover) of a
// request to target when the agent traces, and returns the context to send the request
// from (it carries the span and the request's ids). span is nil when the agent does not
// trace. agent.publish, an Event, gets a producer span.
func (a *Agent) startRequest(ctx context.Context, name, target string) (context.Context, trace.Span) {
	if a.tracer == nil {
		return ctx, nil
	}
	parent := trace.SpanContextFromContext(ctx)
	var traceID uint64
	if parent.IsValid() {
		traceID = mxp.TraceIDOfW3C(parent.TraceID())
	}
	if traceID == 0 {
		traceID = traceFor(ctx)
	}
	kind := trace.SpanKindClient
	if name == spanPublish {
		kind = trace.SpanKindProducer
	}
	opts := []trace.SpanStartOption{trace.WithSpanKind(kind), trace.WithAttributes(
		attribute.String("mxp.target", target), attribute.String("mxp.agent_id", a.cfg.ID))}
	sctx := ctx
	if !parent.IsValid() || parent.TraceID() != mxp.W3CTraceID(traceID) {
		remote := trace.SpanContextConfig{TraceID: mxp.W3CTraceID(traceID), TraceFlags: trace.FlagsSampled, Remote: true}
		if parent.IsValid() {
			remote.SpanID, remote.TraceFlags = parent.SpanID(), parent.TraceFlags()
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: parent}))
		} else {
			remote.SpanID = mxp.MessageSpanID(traceID, 0)
		}
		sctx = trace.ContextWithRemoteSpanContext(ctx, trace.NewSpanContext(remote))
	}
	from := trace.SpanContextFromContext(sctx).SpanID()
	sctx, span := a.tracer.Start(sctx, name, opts...)
	// A no-op provider (the global one before the application sets its own) hands back
	// the parent's span context: an id derived from it would be the same for every
	// request under that parent, so only a span of its own gives the request its id.
	ids := callIDs{trace: traceID} // msg 0: the link's own id
	if sc := span.SpanContext(); sc.IsValid() && sc.SpanID() != from && sc.TraceID() == mxp.W3CTraceID(traceID) {
		ids.msg = mxp.MessageIDForSpan(traceID, sc.SpanID())
	}
	return context.WithValue(sctx, callIDsKey{}, ids), span
}

// startHandle starts the span of a handler serving in, the child of the span in's
// message stands for; span is nil when tracer is nil or in carries no trace.
func startHandle(ctx context.Context, tracer trace.Tracer, in Meta) (context.Context, trace.Span) {
	if tracer == nil || in.TraceID == 0 {
		return ctx, nil
	}
	ctx = trace.ContextWithRemoteSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: mxp.W3CTraceID(in.TraceID), SpanID: mxp.MessageSpanID(in.TraceID, in.MessageID),
		TraceFlags: trace.FlagsSampled, Remote: true,
	}))
	kind := trace.SpanKindServer
	if in.Kind == KindEvent {
		kind = trace.SpanKindConsumer
	}
	attrs := []attribute.KeyValue{attribute.String("mxp.kind", in.Kind.String())}
	if in.From != "" {
		attrs = append(attrs, attribute.String("mxp.caller", in.From))
	}
	if in.Topic != "" {
		attrs = append(attrs, attribute.String("mxp.topic", in.Topic))
	}
	return tracer.Start(ctx, "agent.handle", trace.WithSpanKind(kind), trace.WithAttributes(attrs...))
}

// endSpan ends span (nil: nothing to do); an error sets status Error with its code.
func endSpan(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		code := string(CodeOf(err))
		span.SetAttributes(attribute.String("mxp.error_code", code))
		span.SetStatus(codes.Error, code)
	}
	span.End()
}

// logIDs are the log attributes naming a message: its trace and message ids as the mesh's
// services write them (keys trace_id and msg_id, 16 hex digits), so that one search finds
// a request in the agent's logs and the services'.
func logIDs(traceID, msgID uint64) []any {
	return []any{"trace_id", fmt.Sprintf("%016x", traceID), "msg_id", fmt.Sprintf("%016x", msgID)}
}
