package edge

import (
	"context"
	"sync"
)

// frameQueue is a session's bounded FIFO of received frames. Unlike a buffered channel
// it allocates as it fills, so an idle connection costs a few bytes, not its whole bound.
type frameQueue struct {
	mu    sync.Mutex
	items []inFrame
	head  int
	max   int
	busy  bool          // a frame of the session is being handled (by the loop or inline)
	ready chan struct{} // signalled when items go from empty to non-empty
}

func newFrameQueue(max int) *frameQueue {
	return &frameQueue{max: max, ready: make(chan struct{}, 1)}
}

// push appends in; false when the queue is full.
func (q *frameQueue) push(in inFrame) bool {
	q.mu.Lock()
	if len(q.items)-q.head >= q.max {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, in)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return true
}

// pop returns the oldest frame, waiting for one until ctx ends.
func (q *frameQueue) pop(ctx context.Context) (inFrame, bool) {
	for {
		q.mu.Lock()
		if q.head < len(q.items) {
			in := q.items[q.head]
			q.items[q.head] = inFrame{}
			q.head++
			q.busy = true
			if q.head == len(q.items) { // empty: reuse the array, or let a large one go
				if cap(q.items) > 1024 {
					q.items = nil
				} else {
					q.items = q.items[:0]
				}
				q.head = 0
			}
			q.mu.Unlock()
			return in, true
		}
		q.mu.Unlock()
		select {
		case <-q.ready:
		case <-ctx.Done():
			return inFrame{}, false
		}
	}
}

// done marks the frame taken by pop or claimed by tryInline as handled.
func (q *frameQueue) done() {
	q.mu.Lock()
	q.busy = false
	q.mu.Unlock()
}

// tryInline claims the session for a frame handled on the caller's goroutine: only when
// nothing is queued or being handled, so frames keep their order.
func (q *frameQueue) tryInline() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.busy || q.head < len(q.items) {
		return false
	}
	q.busy = true
	return true
}

// len returns the number of frames waiting (the one being handled not included).
func (q *frameQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) - q.head
}
