// Package log builds the mesh's structured logger: log/slog with a JSON handler, the
// service name on every line, and the trace id, message id and agent id taken from the
// context wherever they are known (use slog's *Context methods).
//
// It must not decide what to log; it only shapes lines. Secrets are redacted by their own
// type (security.Secret); and every secret registered with the process's scrubber
// (security.Scrub: each loaded config's secrets, the providers' keys) is removed from
// every line's message, string values and errors (ScrubHandler), whatever text carried it.
package log

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// Attribute keys written on log lines.
const (
	KeyService = "service"
	KeyTraceID = "trace_id"
	KeyMsgID   = "msg_id"
	KeyAgentID = "agent_id"
	KeySpanID  = "span_id"
)

// Options configure New.
type Options struct {
	Service string
	// Level is shared with hot reload: setting it changes the level of every logger made
	// from it. Nil means a new LevelVar at Info.
	Level *slog.LevelVar
	// Writer defaults to os.Stderr.
	Writer io.Writer
	// AddSource adds file:line to each line.
	AddSource bool
}

// New returns a JSON slog.Logger for a service.
func New(o Options) *slog.Logger {
	if o.Writer == nil {
		o.Writer = os.Stderr
	}
	if o.Level == nil {
		o.Level = new(slog.LevelVar)
	}
	h := slog.NewJSONHandler(o.Writer, &slog.HandlerOptions{Level: o.Level, AddSource: o.AddSource})
	return slog.New(NewContextHandler(NewScrubHandler(h))).With(KeyService, o.Service)
}

// ParseLevel parses debug, info, warn or error (case-insensitive).
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.TrimSpace(s))); err != nil {
		return 0, fmt.Errorf("log level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// Fields are the ids a context carries for logging. Zero values are not logged.
type Fields struct {
	TraceID uint64 // MXP trace id
	MsgID   uint64 // MXP message id
	AgentID string
}

type ctxKey struct{}

// WithFields returns ctx carrying f merged over any fields ctx already has.
func WithFields(ctx context.Context, f Fields) context.Context {
	old, _ := ctx.Value(ctxKey{}).(Fields)
	if f.TraceID == 0 {
		f.TraceID = old.TraceID
	}
	if f.MsgID == 0 {
		f.MsgID = old.MsgID
	}
	if f.AgentID == "" {
		f.AgentID = old.AgentID
	}
	return context.WithValue(ctx, ctxKey{}, f)
}

// FieldsFrom returns the fields carried by ctx.
func FieldsFrom(ctx context.Context) Fields {
	f, _ := ctx.Value(ctxKey{}).(Fields)
	return f
}

// ContextHandler adds the context's ids to each record before passing it on.
type ContextHandler struct{ next slog.Handler }

// NewContextHandler wraps next.
func NewContextHandler(next slog.Handler) *ContextHandler { return &ContextHandler{next: next} }

// Enabled implements slog.Handler.
func (h *ContextHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

// Handle implements slog.Handler. The MXP trace id wins; without it the OpenTelemetry
// trace id of the active span is logged (32 hex digits).
func (h *ContextHandler) Handle(ctx context.Context, r slog.Record) error {
	if ctx != nil {
		f := FieldsFrom(ctx)
		sc := trace.SpanContextFromContext(ctx)
		switch {
		case f.TraceID != 0:
			r.AddAttrs(slog.String(KeyTraceID, fmt.Sprintf("%016x", f.TraceID)))
		case sc.HasTraceID():
			r.AddAttrs(slog.String(KeyTraceID, sc.TraceID().String()))
		}
		if sc.HasSpanID() {
			r.AddAttrs(slog.String(KeySpanID, sc.SpanID().String()))
		}
		if f.MsgID != 0 {
			r.AddAttrs(slog.String(KeyMsgID, fmt.Sprintf("%016x", f.MsgID)))
		}
		if f.AgentID != "" {
			r.AddAttrs(slog.String(KeyAgentID, f.AgentID))
		}
	}
	return h.next.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h *ContextHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &ContextHandler{next: h.next.WithAttrs(as)}
}

// WithGroup implements slog.Handler.
func (h *ContextHandler) WithGroup(name string) slog.Handler {
	return &ContextHandler{next: h.next.WithGroup(name)}
}
