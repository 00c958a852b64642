package edge

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// replyRouter sends bus requests without a goroutine per request: each request gets a
// reply subject under the edge's own inbox prefix, one subscription takes every reply, and
// a timer ends a request at its deadline. The reply goes straight from the subscription's
// callback to the peer, which saves the hand-off to a waiting goroutine on the hot path.
type replyRouter struct {
	nc     *nats.Conn
	prefix string // _INBOX.<edge-id>.
	sub    *nats.Subscription

	mu      sync.Mutex
	next    uint64
	pending map[uint64]*pendingReq
}

type pendingReq struct {
	timer *time.Timer
	done  func(reply *nats.Msg, err error)
}

func newReplyRouter(nc *nats.Conn, edgeID string) *replyRouter {
	return &replyRouter{nc: nc, prefix: nats.InboxPrefix + "edge." + edgeID + ".", pending: map[uint64]*pendingReq{}}
}

func (r *replyRouter) start() error {
	sub, err := r.nc.Subscribe(r.prefix+"*", r.onReply)
	if err != nil {
		return err
	}
	_ = sub.SetPendingLimits(1<<20, 1<<30)
	r.sub = sub
	return r.nc.Flush()
}

// stop ends the subscription and fails every pending request with ctx's error.
func (r *replyRouter) stop() {
	if r.sub != nil {
		_ = r.sub.Unsubscribe()
	}
	r.mu.Lock()
	all := r.pending
	r.pending = map[uint64]*pendingReq{}
	r.mu.Unlock()
	for _, p := range all {
		p.timer.Stop()
		p.done(nil, context.Canceled)
	}
}

// request publishes msg with a reply subject of the router's and calls done exactly once:
// with the reply, or with nats.ErrNoResponders, context.DeadlineExceeded or the publish
// error. It returns the publish error (done has then been called with it).
func (r *replyRouter) request(msg *nats.Msg, deadline time.Time, done func(*nats.Msg, error)) error {
	r.mu.Lock()
	r.next++
	token := r.next
	p := &pendingReq{done: done}
	r.pending[token] = p
	p.timer = time.AfterFunc(time.Until(deadline), func() {
		if r.take(token) != nil {
			done(nil, context.DeadlineExceeded)
		}
	})
	r.mu.Unlock()
	msg.Reply = r.prefix + strconv.FormatUint(token, 10)
	if err := r.nc.PublishMsg(msg); err != nil {
		if r.take(token) != nil {
			p.timer.Stop()
			done(nil, err)
		}
		return err
	}
	return nil
}

func (r *replyRouter) take(token uint64) *pendingReq {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.pending[token]
	delete(r.pending, token)
	return p
}

func (r *replyRouter) onReply(m *nats.Msg) {
	token, err := strconv.ParseUint(strings.TrimPrefix(m.Subject, r.prefix), 10, 64)
	if err != nil {
		return
	}
	p := r.take(token)
	if p == nil {
		return // late: the request already timed out
	}
	p.timer.Stop()
	// The server answers a request nobody subscribes to with a 503 status message.
	if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
		p.done(nil, nats.ErrNoResponders)
		return
	}
	p.done(m, nil)
}
