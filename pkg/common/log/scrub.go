package log

import (
	"context"
	"log/slog"

	"github.com/mxp-mesh/mesh/pkg/common/security"
)

// ScrubHandler removes the process's registered secrets (security.Scrub) from each
// record before passing it on: the message, string values, errors (as their scrubbed
// text) and groups, including attributes added with Logger.With. Other values pass
// unchanged. While no secret is registered it adds nothing but one atomic load.
type ScrubHandler struct{ next slog.Handler }

// NewScrubHandler wraps next.
func NewScrubHandler(next slog.Handler) *ScrubHandler { return &ScrubHandler{next: next} }

// Enabled implements slog.Handler.
func (h *ScrubHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

// Handle implements slog.Handler.
func (h *ScrubHandler) Handle(ctx context.Context, r slog.Record) error {
	if !security.Scrubbing() {
		return h.next.Handle(ctx, r)
	}
	out := slog.NewRecord(r.Time, r.Level, security.Scrub(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(scrubAttr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

// WithAttrs implements slog.Handler.
func (h *ScrubHandler) WithAttrs(as []slog.Attr) slog.Handler {
	if security.Scrubbing() {
		scrubbed := make([]slog.Attr, len(as))
		for i, a := range as {
			scrubbed[i] = scrubAttr(a)
		}
		as = scrubbed
	}
	return &ScrubHandler{next: h.next.WithAttrs(as)}
}

// WithGroup implements slog.Handler.
func (h *ScrubHandler) WithGroup(name string) slog.Handler {
	return &ScrubHandler{next: h.next.WithGroup(name)}
}

func scrubAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, security.Scrub(v.String()))
	case slog.KindGroup:
		g := v.Group()
		out := make([]slog.Attr, len(g))
		for i, ga := range g {
			out[i] = scrubAttr(ga)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(out...)}
	case slog.KindAny:
		if err, ok := v.Any().(error); ok && err != nil {
			return slog.String(a.Key, security.Scrub(err.Error()))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}
