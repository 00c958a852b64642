package transport

import (
	"context"
	"errors"
	"net"
	"os"
	"sync/atomic"
	"time"
)

// Lending the socket to Receive callers (dialled connections).
//
// A message that the read loop hands to a goroutine blocked in Receive costs a goroutine
// wake-up: the Go runtime wakes an idle thread (a futex call, an inter-processor interrupt
// on a VM) for every hand-off, a large share of a loopback round trip. A
// plain UDP client does not pay it: the goroutine that waits for the answer is the one
// the poller wakes. So on a dialled Conn, which has its socket to itself, a Receive caller
// that finds nothing queued takes the read token and reads the socket itself (readDirect):
// it processes every packet exactly as the read loop would (ACKs, datagrams, closes) and
// returns as soon as its message is queued.
//
// The read loop gives the token up when a Receive caller waits for it (lendState.waiters)
// and sleeps. Somebody must read when no Receive caller does (ACKs for a sender, a peer's
// CLOSE), so every release of the token arms the lend timer: if the token stayed free and
// unused for LendCheckInterval, the timer wakes the read loop, which reads again until a
// Receive caller next asks. The timer is armed once per interval at most, so a busy
// request/response loop pays one timer per LendCheckInterval, not per message; a Receive
// caller that keeps the token while it waits (an idle agent) costs nothing.

// LendCheckInterval is how long the read token may stay free, unused, before the read loop
// takes it back: the longest a packet waits in the socket when nobody reads.
const LendCheckInterval = time.Millisecond

type lendState struct {
	ep      *endpoint
	conn    *Conn         // the endpoint's one connection (direct only)
	direct  bool          // Receive callers may read (a dialled endpoint)
	waiters atomic.Int32  // Receive callers waiting for the token's holder to give it up
	wake    chan struct{} // wakes the read loop
	uses    atomic.Uint64 // token acquisitions by Receive callers
	lends   atomic.Uint64 // times the read loop gave the token up to waiting Receive callers
	pending atomic.Bool   // the timer is armed
	seen    atomic.Uint64 // uses when the timer was armed
	timer   *time.Timer
}

func (l *lendState) init(ep *endpoint) {
	l.ep = ep
	l.direct = ep.connected
	l.wake = make(chan struct{}, 1)
	if l.direct {
		l.timer = time.AfterFunc(time.Hour, l.check)
		l.timer.Stop()
	}
}

// releaseToken frees the read token and makes sure the read loop takes it back if nobody
// else does within LendCheckInterval.
func (ep *endpoint) releaseToken() {
	ep.token.Store(false)
	l := &ep.lend
	if !l.direct {
		return
	}
	if l.waiters.Load() > 0 {
		// A Receive caller waits for the token (it found it taken): wake it to try again,
		// whether or not its message came.
		signal(l.conn.readable)
	}
	if !l.pending.Swap(true) {
		l.seen.Store(l.uses.Load())
		l.timer.Reset(LendCheckInterval)
	}
}

// check is the lend timer's callback.
func (l *lendState) check() {
	l.pending.Store(false)
	if l.ep.closed.Load() || l.ep.token.Load() {
		return // the holder arms the timer again when it releases the token
	}
	if l.uses.Load() == l.seen.Load() {
		signal(l.wake) // free and unused for a whole interval: the read loop reads again
		return
	}
	// Receive callers are still taking the token in turn: look again later.
	if !l.pending.Swap(true) {
		l.seen.Store(l.uses.Load())
		l.timer.Reset(LendCheckInterval)
	}
}

// Outcomes of readDirect.
const (
	readNone   = iota // no direct reading here (a Listener's connection, or OnMessage or OnDatagram set)
	readDone          // the caller read and processed a batch
	readWaiter        // the token was taken: the caller is counted in lend.waiters and must
	// wait for c.readable, then call endWait
)

// readDirect is Receive's read: when it can take the read token, it reads and processes one
// batch of packets on the caller's goroutine (readDone). When another goroutine holds the
// token it registers the caller as a waiter, whom the holder wakes when it gives the token
// up (readWaiter). Packets for the caller's own connection are queued as usual, and the
// caller looks there next. ctx bounds the wait for a packet.
func (c *Conn) readDirect(ctx context.Context) int {
	ep := c.ep
	if !ep.lend.direct || c.cfg.handlersOnLoop() {
		return readNone
	}
	if !ep.token.CompareAndSwap(false, true) {
		// Register, then look again: the holder may have given the token up before it
		// could see the registration.
		ep.lend.waiters.Add(1)
		if !ep.token.CompareAndSwap(false, true) {
			return readWaiter
		}
		ep.lend.waiters.Add(-1)
	}
	ep.lend.uses.Add(1)
	stop := ep.boundRead(ctx)
	_, err := ep.readBatch()
	stop()
	ep.releaseToken()
	if err != nil && !ep.closed.Load() && !errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrDeadlineExceeded) {
		// A transient error (an ICMP port unreachable from a restarting server): pause as
		// the read loop does, then read again.
		ep.readFailed(err)
		time.Sleep(time.Millisecond)
	}
	return readDone
}

// endWait ends a wait that readDirect registered (readWaiter).
func (c *Conn) endWait() { c.ep.lend.waiters.Add(-1) }

// boundRead makes a read on the socket return when ctx ends; the returned function undoes
// it. Contract: the caller holds the read token. A deadline set by a callback that was
// already running when stop was called can outlive it: readBatch clears it for the next
// reader, which then just reads again.
func (ep *endpoint) boundRead(ctx context.Context) (stop func()) {
	if ctx.Done() == nil {
		return func() {}
	}
	cancel := context.AfterFunc(ctx, func() { _ = ep.udp.SetReadDeadline(aLongTimeAgo) })
	return func() {
		if !cancel() {
			_ = ep.udp.SetReadDeadline(time.Time{})
		}
	}
}

// aLongTimeAgo is a read deadline in the past: the pending read returns at once.
var aLongTimeAgo = time.Unix(1, 0)
