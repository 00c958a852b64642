package transport

import (
	"errors"
	"net"
	"os"
	"sync"
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

// stallGuard is an endpoint's watch over its handlers.
type stallGuard struct {
	mu      sync.Mutex
	timer   *time.Timer // fires HandlerStall after begin
	inside  bool        // the read loop runs handlers (between begin and end)
	helper  *stallHelper
	rd      batchReader // the helper's reader, kept for the next stall
	helpers atomic.Uint64
}

// stallHelper is one helper goroutine's state.
type stallHelper struct {
	stop    atomic.Bool
	done    chan struct{}
	touched []*Conn // connections it received messages for; read by the read loop after done
}

// beginHandlers tells the guard that the read loop starts running handlers.
// Contract: called by the read loop (holding the read token) before the handlers of a
// batch, and matched by endHandlers.
func (ep *endpoint) beginHandlers() {
	g := &ep.stall
	g.mu.Lock()
	g.inside = true
	if g.timer == nil {
		g.timer = time.AfterFunc(HandlerStall, ep.handlersStalled)
	} else {
		g.timer.Reset(HandlerStall)
	}
	g.mu.Unlock()
}

// endHandlers stops the helper, if one runs, and returns the connections it received
// messages for (their handlers are still to run).
// Contract: called by the read loop after the handlers; when it returns, no helper reads.
func (ep *endpoint) endHandlers() []*Conn {
	g := &ep.stall
	g.mu.Lock()
	g.inside = false
	g.timer.Stop()
	h := g.helper
	g.helper = nil
	g.mu.Unlock()
	if h == nil {
		return nil
	}
	h.stop.Store(true)
	_ = ep.udp.SetReadDeadline(time.Now()) // wakes the helper's read
	<-h.done
	_ = ep.udp.SetReadDeadline(time.Time{})
	return h.touched
}

// handlersStalled starts a helper when the read loop is still in its handlers.
// Contract: the guard timer's callback.
func (ep *endpoint) handlersStalled() {
	g := &ep.stall
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.inside || g.helper != nil || ep.closed.Load() {
		return
	}
	if g.rd == nil {
		g.rd = newBatchReader(ep)
	}
	h := &stallHelper{done: make(chan struct{})}
	g.helper = h
	g.helpers.Add(1)
	go ep.helpRead(h, g.rd)
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
