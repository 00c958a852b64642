package edge

import (
	"context"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/common/tracing"
	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// The edge's spans. A request from a peer (Call, AgentRegister, AgentHeartbeat,
// AgentDiscover) gets a server span from its arrival until its answer is sent, an Event
// from a peer one until it is on the bus (edge.publish); each is the child of the span its
// MXP message stands for (mxp.MessageSpanID: the sender's own span when the sender picked
// the message id from it, as the SDK does). A Call delivered to a peer gets a client span
// from its delivery until the peer answers, an Event a producer span around its sending
// (edge.deliver), the child of the span in the message's bus headers, and the delivered
// frame's message id is picked from it (mxp.MessageIDForSpan), so the agent's handler
// span is its child. With no tracer (the
// edge's tracer is nil unless tracing.Enabled) none of this runs: no span, no
// traceparent on Calls to agents, the edge's own message ids.

// Span names of the edge.
const (
	spanDeliver = "edge.deliver"
)

// spanName names the server span of a request of type t.
func spanName(t mxp.MessageType) string {
	switch t {
	case mxp.TypeCall:
		return "edge.call"
	case mxp.TypeAgentRegister:
		return "edge.register"
	case mxp.TypeAgentHeartbeat:
		return "edge.heartbeat"
	case mxp.TypeAgentDiscover:
		return "edge.discover"
	case mxp.TypeEvent:
		return "edge.publish"
	case mxp.TypeStreamOpen:
		return "edge.stream"
	}
	return "edge." + t.String()
}

// startRequestSpan starts the server span of request f, bound for subject, and writes its
// traceparent into h so that whatever answers on the bus continues it. Nil when the edge
// does not trace or f carries no trace id.
func (s *session) startRequestSpan(f *mxp.Frame, subject string, h nats.Header) trace.Span {
	t := s.e.tracer
	if t == nil || f.TraceID == 0 {
		return nil
	}
	_, span := t.Start(tracing.MessageContext(context.Background(), f.TraceID, f.MessageID), spanName(f.Type),
		trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
			attribute.String("messaging.destination.name", subject),
			attribute.String("mxp.peer", s.peerHdr[0]),
		))
	if caller := h[bus.HeaderAgentID]; len(caller) == 1 {
		span.SetAttributes(attribute.String("mxp.agent_id", caller[0]))
	}
	setTraceparent(h, span.SpanContext())
	return span
}

// startDeliverySpan starts the span of a message from the bus delivered to this
// session's peer (kind client for a Call, producer for an Event) for target (the zero id:
// none named); nil when the edge does not trace or the message carries no trace.
func (s *session) startDeliverySpan(h nats.Header, target mxp.AgentID, kind trace.SpanKind) trace.Span {
	t := s.e.tracer
	if t == nil {
		return nil
	}
	ctx := tracing.Extract(context.Background(), h)
	parent := trace.SpanContextFromContext(ctx)
	if !parent.IsValid() {
		return nil
	}
	_, span := t.Start(ctx, spanDeliver, trace.WithSpanKind(kind), trace.WithAttributes(
		attribute.String("mxp.peer", s.peerHdr[0]),
	))
	if !target.IsZero() {
		span.SetAttributes(attribute.String("mxp.target", target.String()))
	}
	if span.SpanContext().SpanID() == parent.SpanID() {
		// A tracer that makes no span of its own (a no-op one tracing.Enabled did not
		// recognise, the global delegate) hands back the parent: the delivered id must
		// not come from it, or deliveries under one parent would share it.
		return nil
	}
	return span
}

// deliveryID is the message id of a Call delivered in span (in MXP trace traceID): the
// id that makes the agent's span the child of span, or 0 when there is none (no span, a
// span in a trace MXP cannot carry, or the one span id that maps to no message id).
func deliveryID(span trace.Span, traceID uint64) uint64 {
	if span == nil || traceID == 0 {
		return 0
	}
	sc := span.SpanContext()
	if !sc.IsValid() || sc.TraceID() != mxp.W3CTraceID(traceID) {
		return 0
	}
	return mxp.MessageIDForSpan(traceID, sc.SpanID())
}

// endSpan ends span (nil: nothing to do), with status Error and mxp.error_code when code
// is an error code.
func endSpan(span trace.Span, code mxp.ErrorCode) {
	if span == nil {
		return
	}
	if code != "" {
		span.SetAttributes(attribute.String("mxp.error_code", string(code)))
		span.SetStatus(codes.Error, string(code))
	}
	span.End()
}

// setTraceparent writes sc as the W3C traceparent of h.
func setTraceparent(h nats.Header, sc trace.SpanContext) {
	if sc.IsValid() {
		h.Set(bus.HeaderTraceparent, formatTraceparent(sc.TraceID(), sc.SpanID(), sc.IsSampled()))
	}
}
