package edge

import (
	"container/heap"
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// replyRouter sends bus requests without a goroutine per request: each request gets a
// reply subject under the edge's own inbox prefix, one subscription takes every reply, and
// one timer, armed for the earliest deadline pending, ends requests at their deadlines (a
// timer per request cost an allocation and two runtime timer-heap updates per Call). The
// reply goes straight from the subscription's callback to the peer, which saves the
// hand-off to a waiting goroutine on the hot path.
type replyRouter struct {
	nc     *nats.Conn
	prefix string // _INBOX.<edge-id>.
	sub    *nats.Subscription

	batch outBatch // touched only by onReply (the subscription's goroutine)

	mu         sync.Mutex
	next       uint64
	pending    map[uint64]*pendingReq
	byDeadline reqHeap     // the pending requests, earliest deadline first
	timer      *time.Timer // runs expire at timerAt
	timerAt    time.Time   // zero: the timer is not armed
}

type pendingReq struct {
	token    uint64
	deadline time.Time
	index    int // in byDeadline
	done     func(reply *nats.Msg, err error, b *outBatch)
}

// outBatch collects the peers sent frames with SendLater during one burst of replies, so
// that each is flushed once when the burst ends. Used by one goroutine at a time (the
// reply subscription's).
type outBatch struct {
	peers []batchPeer
}

// maxBatchPeers bounds a burst: past it the batch is flushed even if replies wait.
const maxBatchPeers = 64

func (b *outBatch) add(p batchPeer) {
	for _, q := range b.peers {
		if q == p {
			return
		}
	}
	b.peers = append(b.peers, p)
}

func (b *outBatch) flush() {
	for i, p := range b.peers {
		p.Flush()
		b.peers[i] = nil
	}
	b.peers = b.peers[:0]
}

func newReplyRouter(nc *nats.Conn, edgeID string) *replyRouter {
	r := &replyRouter{nc: nc, prefix: nats.InboxPrefix + "edge." + edgeID + ".", pending: map[uint64]*pendingReq{}}
	r.timer = time.AfterFunc(time.Hour, r.expire)
	r.timer.Stop()
	return r
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
	r.byDeadline = nil
	r.timer.Stop()
	r.timerAt = time.Time{}
	r.mu.Unlock()
	for _, p := range all {
		p.done(nil, context.Canceled, nil)
	}
}

// request publishes msg with a reply subject of the router's and calls done exactly once:
// with the reply, or with nats.ErrNoResponders, context.DeadlineExceeded or the publish
// error. It returns the publish error (done has then been called with it).
//
// done gets an outBatch when it runs on the reply subscription's goroutine (a reply):
// frames it sends there may use SendLater and add their peer to it; it is nil on the other
// paths (timeout, publish error, stop), which must send at once.
func (r *replyRouter) request(msg *nats.Msg, deadline time.Time, done func(*nats.Msg, error, *outBatch)) error {
	r.mu.Lock()
	r.next++
	token := r.next
	p := &pendingReq{token: token, deadline: deadline, done: done}
	r.pending[token] = p
	heap.Push(&r.byDeadline, p)
	if r.timerAt.IsZero() || deadline.Before(r.timerAt) {
		r.timerAt = deadline
		r.timer.Reset(time.Until(deadline))
	}
	r.mu.Unlock()
	msg.Reply = r.replySubject(token)
	if err := r.nc.PublishMsg(msg); err != nil {
		if r.take(token) != nil {
			done(nil, err, nil)
		}
		return err
	}
	return nil
}

// replySubject is the reply subject of token: the prefix and the token in decimal, built
// in one allocation (concatenating a formatted token costs two).
func (r *replyRouter) replySubject(token uint64) string {
	var b [64]byte
	return string(strconv.AppendUint(append(b[:0], r.prefix...), token, 10))
}

// take removes and returns the pending request of token (nil when it is no longer
// pending). The timer stays armed: if it fires for a request taken meanwhile, expire finds
// nothing due and re-arms it for the earliest request left.
func (r *replyRouter) take(token uint64) *pendingReq {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.pending[token]
	if p != nil {
		delete(r.pending, token)
		heap.Remove(&r.byDeadline, p.index)
	}
	return p
}

// expire ends the requests whose deadline has passed and arms the timer for the next.
func (r *replyRouter) expire() {
	r.mu.Lock()
	now := time.Now()
	var due []*pendingReq
	for len(r.byDeadline) > 0 && !r.byDeadline[0].deadline.After(now) {
		p := heap.Pop(&r.byDeadline).(*pendingReq)
		delete(r.pending, p.token)
		due = append(due, p)
	}
	if len(r.byDeadline) > 0 {
		r.timerAt = r.byDeadline[0].deadline
		r.timer.Reset(r.timerAt.Sub(now))
	} else {
		r.timerAt = time.Time{}
	}
	r.mu.Unlock()
	for _, p := range due {
		p.done(nil, context.DeadlineExceeded, nil)
	}
}

// reqHeap orders pending requests by deadline (container/heap).
type reqHeap []*pendingReq

func (h reqHeap) Len() int           { return len(h) }
func (h reqHeap) Less(i, j int) bool { return h[i].deadline.Before(h[j].deadline) }
func (h reqHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *reqHeap) Push(x any) {
	p := x.(*pendingReq)
	p.index = len(*h)
	*h = append(*h, p)
}
func (h *reqHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return p
}

func (r *replyRouter) onReply(m *nats.Msg) {
	r.route(m)
	// Flush when the burst ends: no reply waits behind this one (or the batch is full).
	// nats.go counts the message being delivered as pending until its callback returns,
	// so 1 means none behind it.
	if len(r.batch.peers) > 0 {
		if n, _, err := r.sub.Pending(); err != nil || n <= 1 || len(r.batch.peers) >= maxBatchPeers {
			r.batch.flush()
		}
	}
}

// route hands one reply to its request.
func (r *replyRouter) route(m *nats.Msg) {
	token, err := strconv.ParseUint(strings.TrimPrefix(m.Subject, r.prefix), 10, 64)
	if err != nil {
		return
	}
	p := r.take(token)
	if p == nil {
		return // late: the request already timed out
	}
	// The server answers a request nobody subscribes to with a 503 status message.
	if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
		p.done(nil, nats.ErrNoResponders, &r.batch)
		return
	}
	p.done(m, nil, &r.batch)
}
