package agent

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// redialer is a meshConn that survives the loss of its connection: when the current link
// fails, it dials again with backoff and jitter and carries on with a new link. Calls in
// flight on the lost link fail (with ErrLinkClosed); the registration is renewed by the
// registration loop (the first heartbeat on the new connection is refused, so it
// registers again); topic subscriptions are made again on the new link.
type redialer struct {
	dial func(ctx context.Context) (FrameConn, error)
	self mxp.AgentID
	log  *slog.Logger

	mu      sync.Mutex
	cur     *link
	subs    map[string]bool // live subscription patterns, made again after a redial
	onNew   func()          // called after each reconnect (the agent registers again)
	closed  bool
	changed chan struct{} // closed and replaced when cur changes
}

func newRedialer(ctx context.Context, dial func(context.Context) (FrameConn, error), self mxp.AgentID, log *slog.Logger) (*redialer, error) {
	fc, err := dial(ctx)
	if err != nil {
		return nil, err
	}
	return &redialer{dial: dial, self: self, log: log, cur: newLink(fc, self, log), subs: map[string]bool{}, changed: make(chan struct{})}, nil
}

// current returns the link in use.
func (r *redialer) current() *link {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur
}

// Recv returns the next inbound message, redialling when the link is lost. It returns
// only ctx's error or, after Close, ErrLinkClosed.
func (r *redialer) Recv(ctx context.Context) (Inbound, error) {
	for {
		l := r.current()
		in, err := l.Recv(ctx)
		if err == nil {
			return in, nil
		}
		if ctx.Err() != nil {
			return Inbound{}, ctx.Err()
		}
		if err := r.redial(ctx, l, err); err != nil {
			return Inbound{}, err
		}
	}
}

// redial replaces the lost link old with a new one, retrying with backoff until it
// succeeds, ctx ends or the redialer is closed.
func (r *redialer) redial(ctx context.Context, old *link, cause error) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrLinkClosed
	}
	r.mu.Unlock()
	_ = old.Close()
	r.log.Warn("agent: connection lost; reconnecting", "error", cause)
	reg := &registrar{} // the same backoff as registration: 200ms doubling to 30s, ±50% jitter
	reg.defaults()
	b := reg.newBackoff()
	for {
		fc, err := r.dial(ctx)
		if err == nil {
			l := newLink(fc, r.self, r.log)
			r.mu.Lock()
			if r.closed {
				r.mu.Unlock()
				_ = l.Close()
				return ErrLinkClosed
			}
			r.cur = l
			close(r.changed)
			r.changed = make(chan struct{})
			onNew := r.onNew
			patterns := make([]string, 0, len(r.subs))
			for p := range r.subs {
				patterns = append(patterns, p)
			}
			r.mu.Unlock()
			r.log.Info("agent: reconnected")
			if onNew != nil {
				onNew()
			}
			for _, p := range patterns {
				if err := l.subscribe(ctx, topicSubscribe, p); err != nil {
					r.log.Warn("agent: subscription not renewed", "pattern", p, "error", err)
				}
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		wait := b.NextBackOff()
		r.log.Warn("agent: reconnect failed, retrying", "error", err, "retry_in", wait)
		if err := sleepCtx(ctx, wait); err != nil {
			return err
		}
	}
}

// The registry operations, replies and outbound requests use the current link.

func (r *redialer) Send(ctx context.Context, out Outbound) error { return r.current().Send(ctx, out) }

func (r *redialer) Register(ctx context.Context, reg Registration) (time.Duration, error) {
	return r.current().Register(ctx, reg)
}

func (r *redialer) Heartbeat(ctx context.Context, id string, meta map[string]string) (bool, error) {
	return r.current().Heartbeat(ctx, id, meta)
}

func (r *redialer) Deregister(ctx context.Context, id string) error {
	return r.current().Deregister(ctx, id)
}

// subscribe records pattern so that it is made again after a reconnect.
func (r *redialer) subscribe(ctx context.Context, topic, pattern string) error {
	if err := r.current().subscribe(ctx, topic, pattern); err != nil {
		return err
	}
	r.mu.Lock()
	if topic == topicSubscribe {
		r.subs[pattern] = true
	} else {
		delete(r.subs, pattern)
	}
	r.mu.Unlock()
	return nil
}

// Close closes the current link; Recv then returns ErrLinkClosed.
func (r *redialer) Close() error {
	r.mu.Lock()
	r.closed = true
	l := r.cur
	r.mu.Unlock()
	return l.Close()
}

// outbound is what the agent's calls out need from its connection: a link, or a
// redialer that hands out its current link.
type outbound interface {
	current() *link
	subscribe(ctx context.Context, topic, pattern string) error
}

func (l *link) current() *link { return l }

// outHolder lets Agent.out (an atomic.Value) hold either kind of outbound.
type outHolder struct{ o outbound }

// dialer returns the function Run uses to (re)connect to the edge.
func dialer(addr string, opts mxp.Options) func(ctx context.Context) (FrameConn, error) {
	return func(ctx context.Context) (FrameConn, error) {
		c, err := mxp.Dial(ctx, addr, opts)
		if err != nil {
			return nil, fmt.Errorf("agent: connecting to the edge at %s: %w", addr, err)
		}
		return c, nil
	}
}
