package memory

import "sync"

// Ring is a bounded, volatile memory: it keeps the last Cap values pushed and forgets the
// oldest when full. It is safe for concurrent use. The conversation memory of an agent is
// a Ring[Message].
type Ring[T any] struct {
	mu    sync.Mutex
	buf   []T
	start int // index of the oldest value
	n     int // values held
}

// NewRing returns an empty ring holding at most capacity values (at least 1).
func NewRing[T any](capacity int) *Ring[T] {
	if capacity < 1 {
		capacity = 1
	}
	return &Ring[T]{buf: make([]T, capacity)}
}

// Push appends values, dropping the oldest ones when the ring is full.
func (r *Ring[T]) Push(values ...T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := len(r.buf)
	for _, v := range values {
		if r.n < c {
			r.buf[(r.start+r.n)%c] = v
			r.n++
			continue
		}
		r.buf[r.start] = v
		r.start = (r.start + 1) % c
	}
}

// Len returns how many values the ring holds.
func (r *Ring[T]) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// Cap returns the most values the ring holds.
func (r *Ring[T]) Cap() int { return len(r.buf) }

// Items returns a copy of the values, oldest first.
func (r *Ring[T]) Items() []T { return r.Last(-1) }

// Last returns a copy of the newest n values, oldest first; n < 0 or n > Len means all.
func (r *Ring[T]) Last(n int) []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n < 0 || n > r.n {
		n = r.n
	}
	out := make([]T, n)
	c := len(r.buf)
	first := r.start + r.n - n
	for i := range n {
		out[i] = r.buf[(first+i)%c]
	}
	return out
}

// Reset empties the ring and replaces its content with values (the newest Cap of them).
func (r *Ring[T]) Reset(values ...T) {
	r.mu.Lock()
	clear(r.buf)
	r.start, r.n = 0, 0
	r.mu.Unlock()
	r.Push(values...)
}
