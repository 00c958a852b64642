package transport

import (
	"errors"
	"net"
	"os"
	"sync/atomic"
	"time"
)

// Stalled handlers. An endpoint with an OnMessage or OnDatagram runs the handlers on its
// read loop (no hand-off per message), so a handler that blocks stops the reading of the socket: the
// ACKs, probes and data of every other connection wait, and their peers' dead-peer
// clocks run. When the handlers of a batch have run for HandlerStall, a helper goroutine
// takes over the reading: it processes packets as the read loop does (ACKs, PINGs,
// handshakes, data into the receive queues, under the receive budget) but runs no
// handler; messages and datagrams wait for the read loop, which stops the helper when the handlers
// return and then runs the handlers of the connections the helper received messages
// for, in order. Packet processing stays exclusive: the read loop does none while the
// helper runs. Handlers stay serialised, per connection and across the endpoint.

// stallGuard is an endpoint's watch over its handlers. The read loop's side costs a few
// atomic operations per batch; the timer is re-armed at most once per HandlerStall.
type stallGuard struct {
	state   atomic.Int32 // stallOutside, stallInside (the read loop runs handlers), stallHelped
	start   atomic.Int64 // when the read loop began the current handlers (UnixNano)
	armed   atomic.Bool  // the timer is pending: whoever sets it (CAS) arms the timer
	timer   *time.Timer  // created stopped by start, before the read loop runs
	helper  atomic.Pointer[stallHelper]
	rd      batchReader // the helpers' reader, kept for the next stall (helper starts are serialised by helper)
	helpers atomic.Uint64
}

const (
	stallOutside = iota
	stallInside
	stallHelped
)

// stallHelper is one helper goroutine's state.
type stallHelper struct {
	stop    atomic.Bool
	done    chan struct{}
	touched []*Conn // connections it received messages for; read by the read loop after done
}

// beginHandlers tells the guard that the read loop starts running handlers.
// Contract: called by the read loop (holding the read token) before the handlers of a
// batch, and matched by endHandlers.
func (ep *endpoint) beginHandlers(now time.Time) {
	g := &ep.stall
	g.start.Store(now.UnixNano())
	g.state.Store(stallInside)
	if !g.armed.Load() && g.armed.CompareAndSwap(false, true) {
		g.timer.Reset(HandlerStall)
	}
}

// endHandlers stops the helper, if one runs, and returns the connections it received
// messages for (their handlers are still to run).
// Contract: called by the read loop after the handlers; when it returns, no helper reads.
func (ep *endpoint) endHandlers() []*Conn {
	g := &ep.stall
	if g.state.Swap(stallOutside) != stallHelped {
		return nil
	}
	h := g.helper.Swap(nil)
	h.stop.Store(true)
	_ = ep.udp.SetReadDeadline(time.Now()) // wakes the helper's read
	<-h.done
	_ = ep.udp.SetReadDeadline(time.Time{})
	return h.touched
}

// handlersStalled starts a helper when the read loop has been in the same handlers for
// HandlerStall, re-arms the timer when it is in newer ones, and otherwise lets it lapse.
// Contract: the guard timer's callback; it runs only while armed is set.
func (ep *endpoint) handlersStalled() {
	g := &ep.stall
	for {
		if g.state.Load() != stallInside || ep.closed.Load() {
			g.armed.Store(false)
			// The read loop may have begun handlers after the load and found the timer
			// still armed: then watch them.
			if g.state.Load() == stallInside && g.armed.CompareAndSwap(false, true) {
				continue
			}
			return
		}
		if left := HandlerStall - time.Since(time.Unix(0, g.start.Load())); left > 0 {
			g.timer.Reset(left)
			return
		}
		h := &stallHelper{done: make(chan struct{})}
		if !g.helper.CompareAndSwap(nil, h) {
			g.armed.Store(false)
			return
		}
		if !g.state.CompareAndSwap(stallInside, stallHelped) {
			g.helper.Store(nil) // the handlers ended meanwhile
			continue
		}
		if g.rd == nil {
			g.rd = newBatchReader(ep)
		}
		g.helpers.Add(1)
		g.armed.Store(false)
		go ep.helpRead(h, g.rd)
		return
	}
}

// helpRead reads and processes packets until stopped or the socket closes, running no
// handler. Contract: runs only while the read loop is inside handlers (it lends the
// read token to the helper for that time).
func (ep *endpoint) helpRead(h *stallHelper, rd batchReader) {
	defer close(h.done)
	var batch []*Conn
	for !h.stop.Load() {
		n, err := rd.read()
		if err != nil {
			if ep.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				ep.readFailed(err)
			}
			continue
		}
		now := time.Now()
		for i := 0; i < n; i++ {
			b, src, ok := rd.packet(i)
			if !ok {
				continue
			}
			if c := ep.handlePacket(b, src, now); c != nil && !containsConn(batch, c) {
				batch = append(batch, c)
			}
		}
		for i, c := range batch {
			if c.afterReceiveHeld(now) && !c.stallTouched {
				c.stallTouched = true
				h.touched = append(h.touched, c)
			}
			batch[i] = nil
		}
		batch = batch[:0]
	}
}

// afterReceiveHeld is afterReceiveBatch without the handlers: it sends what the packets
// made due (ACKs above all) and wakes the readers of what no handler takes; it reports
// whether messages or datagrams wait for a handler (OnMessage, OnDatagram).
// Contract: called by the stall helper for each connection of a batch.
func (c *Conn) afterReceiveHeld(now time.Time) (held bool) {
	c.mu.Lock()
	if !c.closed {
		c.flushLocked(now)
		c.armTimerLocked(now)
	}
	handMsg, handDgram := c.wakeMsg && c.cfg.OnMessage != nil, c.wakeDgram && c.cfg.OnDatagram != nil
	wakeMsg, wakeDgram := c.wakeMsg && !handMsg, c.wakeDgram && !handDgram
	if wakeMsg {
		c.wakeMsg = false
	}
	if wakeDgram {
		c.wakeDgram = false
	}
	c.mu.Unlock()
	if wakeMsg {
		signal(c.readable)
	}
	if wakeDgram {
		signal(c.dgramReadable)
	}
	return handMsg || handDgram
}
