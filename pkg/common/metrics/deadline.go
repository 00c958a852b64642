package metrics

import (
	"context"
	"net/http"
	"time"
)

// limitsKey carries a server's ServerLimits in its requests' contexts.
type limitsKey struct{}

// LimitsFrom returns the limits of the Server that received the request with ctx, and
// false when the request came another way (httptest, another server).
func LimitsFrom(ctx context.Context) (ServerLimits, bool) {
	l, ok := ctx.Value(limitsKey{}).(ServerLimits)
	return l, ok
}

// StreamDeadline keeps a long response (SSE, a stream) within the server's write timeout
// per write instead of per response: each Extend gives the connection a full write
// timeout from now, so a stream that keeps moving is never cut off, while a client that
// stops reading still is, one write timeout after its last successful write.
//
// The zero StreamDeadline does nothing. It is a value so that a handler holds it without
// an allocation.
type StreamDeadline struct {
	w       writeDeadliner // nil: nothing to move
	timeout time.Duration
	next    time.Time // Extend moves the deadline again once past this
}

// NewStreamDeadline returns the write deadline of w, the response to r; it is the zero
// StreamDeadline, which does nothing, when r did not come through a metrics.Server (no
// write timeout applies then) or w cannot move its deadline.
func NewStreamDeadline(w http.ResponseWriter, r *http.Request) StreamDeadline {
	l, ok := LimitsFrom(r.Context())
	if !ok {
		return StreamDeadline{}
	}
	return StreamDeadline{w: findWriteDeadliner(w), timeout: l.WriteTimeout}
}

// writeDeadliner is what net/http's ResponseWriter implements for
// http.ResponseController.SetWriteDeadline.
type writeDeadliner interface{ SetWriteDeadline(time.Time) error }

// findWriteDeadliner unwraps w as http.ResponseController does, without allocating one.
func findWriteDeadliner(w http.ResponseWriter) writeDeadliner {
	for {
		switch t := w.(type) {
		case writeDeadliner:
			return t
		case interface{ Unwrap() http.ResponseWriter }:
			w = t.Unwrap()
		default:
			return nil
		}
	}
}

// Extend is called before each write of a stream.
// Contract: after Extend, at least half the write timeout is left for the next write;
// the deadline is moved (a timer update, no system call) at most twice per timeout.
func (d *StreamDeadline) Extend() {
	if d.w == nil {
		return
	}
	now := time.Now()
	if now.Before(d.next) {
		return
	}
	if d.w.SetWriteDeadline(now.Add(d.timeout)) != nil {
		d.w = nil // the connection is gone or cannot move deadlines; stop trying
		return
	}
	d.next = now.Add(d.timeout / 2)
}
