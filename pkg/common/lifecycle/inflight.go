package lifecycle

import (
	"context"
	"sync"
)

// InFlight counts requests being handled so a service can stop intake and wait for them.
// Handlers call Acquire before work and Release after; Close stops admitting; Wait blocks
// until the count is zero.
type InFlight struct {
	mu     sync.Mutex
	n      int
	closed bool
	idle   chan struct{} // closed when n reaches 0 after Close
}

// Acquire admits one request; it returns false once Close was called.
func (f *InFlight) Acquire() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.n++
	return true
}

// Release ends a request admitted by Acquire.
func (f *InFlight) Release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n--
	if f.n < 0 {
		panic("lifecycle: InFlight.Release without Acquire")
	}
	if f.closed && f.n == 0 && f.idle != nil {
		close(f.idle)
		f.idle = nil
	}
}

// Len is the number of requests in flight.
func (f *InFlight) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// Close stops admitting new requests.
func (f *InFlight) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
}

// Wait closes intake and blocks until no request is in flight or ctx ends.
func (f *InFlight) Wait(ctx context.Context) error {
	f.mu.Lock()
	f.closed = true
	if f.n == 0 {
		f.mu.Unlock()
		return nil
	}
	if f.idle == nil {
		f.idle = make(chan struct{})
	}
	idle := f.idle
	f.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
