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

// ContextHandler adds the context's ids to each record before passing it on. An id the
// line already carries under the same key (an attribute of the record, or of the logger
// made With it) is not added again: the explicit one wins, and the line stays JSON with
// unique keys.
type ContextHandler struct {
	next   slog.Handler
	preset idKeys // id keys the logger's own attributes (WithAttrs) already carry
}

// idKeys is a set of the id keys the handler adds.
type idKeys uint8

const (
	hasTraceID idKeys = 1 << iota
	hasSpanID
	hasMsgID
	hasAgentID
)

func idKey(key string) idKeys {
	switch key {
	case KeyTraceID:
		return hasTraceID
	case KeySpanID:
		return hasSpanID
	case KeyMsgID:
		return hasMsgID
	case KeyAgentID:
		return hasAgentID
	}
	return 0
}

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
		has := h.preset
		r.Attrs(func(a slog.Attr) bool {
			has |= idKey(a.Key)
			return true
		})
		f := FieldsFrom(ctx)
		sc := trace.SpanContextFromContext(ctx)
		if has&hasTraceID == 0 {
			switch {
			case f.TraceID != 0:
				r.AddAttrs(slog.String(KeyTraceID, fmt.Sprintf("%016x", f.TraceID)))
			case sc.HasTraceID():
				r.AddAttrs(slog.String(KeyTraceID, sc.TraceID().String()))
			}
		}
		if sc.HasSpanID() && has&hasSpanID == 0 {
			r.AddAttrs(slog.String(KeySpanID, sc.SpanID().String()))
		}
		if f.MsgID != 0 && has&hasMsgID == 0 {
			r.AddAttrs(slog.String(KeyMsgID, fmt.Sprintf("%016x", f.MsgID)))
		}
		if f.AgentID != "" && has&hasAgentID == 0 {
			r.AddAttrs(slog.String(KeyAgentID, f.AgentID))
		}
	}
	return h.next.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h *ContextHandler) WithAttrs(as []slog.Attr) slog.Handler {
	preset := h.preset
	for _, a := range as {
		preset |= idKey(a.Key)
	}
	return &ContextHandler{next: h.next.WithAttrs(as), preset: preset}
}

// WithGroup implements slog.Handler. The ids then go into the group, beside the record's
// attributes, so what the logger carried outside it no longer counts.
func (h *ContextHandler) WithGroup(name string) slog.Handler {
	return &ContextHandler{next: h.next.WithGroup(name)}
}
