package transport

import (
	"context"
	"errors"
	"net/netip"
	"time"
)

// receiveData authenticates and processes one data packet. Contract: called by the read
// loop only; it returns whether the packet was accepted.
func (c *Conn) receiveData(kp *keypair, h dataHeader, b []byte, src netip.AddrPort, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || (kp != c.current && kp != c.previous && kp != c.next) {
		c.ep.counters.unknownIndex.Add(1)
		return false
	}
	if kp.expired(now, c.cfg.RejectAfter) {
		c.stats.expiredDropped++
		return false
	}
	if !kp.replay.check(h.counter) {
		c.stats.replayed++
		c.ep.counters.replayed.Add(1)
		return false
	}
	c.rxNonce = nonce(h.counter)
	pt, err := kp.recv.Open(b[DataHeaderSize:DataHeaderSize], c.rxNonce[:], b[DataHeaderSize:], b[:DataHeaderSize])
	if err != nil {
		c.stats.authFailed++
		c.ep.counters.dataAuthFailed.Add(1)
		return false
	}
	if !kp.replay.accept(h.counter) {
		c.stats.replayed++
		c.ep.counters.replayed.Add(1)
		return false
	}
	if kp == c.next {
		c.promoteNextLocked()
	}
	c.lastRecv = now
	c.heardLocked()
	c.setRemoteLocked(src)
	c.stats.packetsRecv++
	c.stats.bytesRecv += uint64(len(b))
	outOfOrder := len(c.recvPNs) > 0 && h.counter+1 < c.recvPNs[len(c.recvPNs)-1].end
	c.now = now
	c.rxRefused = false
	eliciting, err := parseFrames(pt, c, &c.ackScratch)
	if err != nil {
		c.stats.protocolErrors++
		code := uint64(CloseProtocolError)
		if errors.Is(err, errFlowControl) {
			code = CloseFlowControl
		}
		c.closeWith(code, "bad frame", err)
		return false
	}
	if c.closed {
		return false
	}
	if c.rxRefused {
		// Its data did not fit in the receive budget: not acknowledged, so the sender
		// sends it again (in a new packet) once memory frees up. An ACK of what was
		// received before goes back at once all the same: an authenticated packet that
		// tells the sender this side is alive (its dead-peer clock, §3.2, stops), without
		// acknowledging the refused one.
		c.stats.recvBudgetDrops++
		c.ep.counters.recvBudgetDrops.Add(1)
		c.ackQueue++
		c.ackDue = now
		c.recvRefusedLocked(now)
		return true
	}
	c.recvPNs.add(h.counter, h.counter+1)
	if len(c.recvPNs) > 2*MaxAckRanges {
		c.recvPNs.trimTo(MaxAckRanges)
	}
	if eliciting {
		c.ackQueue++
		switch {
		case outOfOrder || c.ackQueue >= AckEveryPackets || c.recentGapLocked():
			c.ackDue = now
		case c.ackDue.IsZero():
			c.ackDue = now.Add(MaxAckDelay)
		}
	}
	return true
}

// afterReceiveBatch sends what the batch made due (ACKs, data the ACKs allowed) and wakes
// readers; it reports whether it woke any.
// Contract: called by the read loop once per batch for every connection that got data.
func (c *Conn) afterReceiveBatch(now time.Time) (woke bool) {
	if c.cfg.handlersOnLoop() {
		// The handlers first: the answers they send carry the ACKs, which then need no
		// packet of their own. But the delayed-ACK timer is armed before they run: a
		// handler that takes longer than MaxAckDelay then does not hold back the ACK of
		// the data it handles (the peer's dead-peer clock would run the whole time).
		c.mu.Lock()
		wake, wakeDgram := c.wakeMsg && c.cfg.OnMessage != nil, c.wakeDgram && c.cfg.OnDatagram != nil
		if wake {
			c.wakeMsg = false
		}
		if wakeDgram {
			c.wakeDgram = false
		}
		if (wake || wakeDgram) && c.ackQueue > 0 && !c.closed {
			c.armTimerLocked(now)
		}
		c.mu.Unlock()
		if wake {
			c.handleMessages()
		}
		if wakeDgram {
			c.handleDatagrams()
		}
	}
	c.mu.Lock()
	if !c.closed {
		c.flushLocked(now)
		c.armTimerLocked(now)
	}
	// What a handler takes stays flagged: a stall helper (stall.go) may have queued
	// messages while the handlers above ran, and the read loop runs their handlers next
	// (readBatch) only if the flag is still set; clearing it here lost them until the
	// connection's next packet.
	wakeMsg, wakeDgram := c.wakeMsg && c.cfg.OnMessage == nil, c.wakeDgram && c.cfg.OnDatagram == nil
	if wakeMsg {
		c.wakeMsg = false
	}
	if wakeDgram {
		c.wakeDgram = false
	}
	c.mu.Unlock()
	// Readers are woken only now, with c.mu free, so they do not block on it at once.
	if wakeMsg {
		signal(c.readable)
	}
	if wakeDgram {
		signal(c.dgramReadable)
	}
	return wakeMsg || wakeDgram
}

// handleMessages passes the queued messages to OnMessage, in order. Contract: called by
// the holder of the read token, without c.mu.
func (c *Conn) handleMessages() {
	c.inMu.Lock()
	msgs := c.msgIn[c.msgInHead:]
	c.msgIn, c.msgInHead = nil, 0
	c.inMu.Unlock()
	ctx := c.handlerContext()
	for i := range msgs {
		m := msgs[i]
		msgs[i] = inMessage{}
		c.consumedMessage(&m)
		if m.tooLarge == 0 {
			c.cfg.OnMessage(ctx, c, m.b)
		} else if c.cfg.OnMessageTooLarge != nil {
			_, err := m.result(c)
			c.cfg.OnMessageTooLarge(ctx, c, err.(*MessageTooLargeError))
		}
	}
}

// handleDatagrams passes the datagrams of the batch to OnDatagram, in the order they were
// received, each released from the receive budget before its call (msg becomes the
// callee's). Contract: called by the holder of the read token, without c.mu.
func (c *Conn) handleDatagrams() {
	c.inMu.Lock()
	ds := c.dgramIn
	c.dgramIn = nil
	c.inMu.Unlock()
	ctx := c.handlerContext()
	for i, d := range ds {
		ds[i] = nil
		c.releaseRecv(len(d))
		c.cfg.OnDatagram(ctx, c, d)
	}
}

// handlerContext returns the ctx passed to OnMessage and OnDatagram, made on first use (a
// connection whose handlers never run costs no context), cancelled when c closes.
// Contract: called by the holder of the read token (the only caller of the handlers).
func (c *Conn) handlerContext() context.Context {
	if c.handlerCtx == nil {
		c.mu.Lock()
		c.handlerCtx, c.cancelCtx = context.WithCancel(context.Background())
		if c.closed {
			c.cancelCtx()
		}
		c.mu.Unlock()
	}
	return c.handlerCtx
}

// The frameHandler methods run with c.mu held, inside receiveData.

func (c *Conn) onPing() {}

func (c *Conn) onAck(a *ackFrame) { c.processAckLocked(a, c.now) }

func (c *Conn) onStream(offset uint64, data []byte) error {
	ok, err := c.rcv.write(offset, data, c)
	if !ok && err == nil {
		c.rxRefused = true
	}
	c.waitingLocked(c.now)
	return err
}

func (c *Conn) onMaxData(max uint64) {
	if max > c.snd.maxData {
		c.snd.maxData = max
	}
}

func (c *Conn) onDatagram(data []byte) {
	c.inMu.Lock()
	defer c.inMu.Unlock()
	if len(c.dgramIn) >= c.cfg.DatagramQueue {
		c.releaseRecv(len(c.dgramIn[0]))
		c.dgramIn[0] = nil
		c.dgramIn = c.dgramIn[1:]
		c.stats.datagramsDropped++
		c.ep.counters.datagramsDroppedIn.Add(1)
	}
	if !c.chargeRecv(len(data)) { // unreliable: dropped, not retransmitted
		c.stats.datagramsDropped++
		c.stats.recvBudgetDrops++
		c.ep.counters.recvBudgetDrops.Add(1)
		return
	}
	c.dgramIn = append(c.dgramIn, append([]byte(nil), data...))
	c.stats.datagramsRecv++
	c.wakeDgram = true
}

func (c *Conn) onClose(code uint64, reason []byte) {
	c.closeLocked(&CloseError{Code: code, Reason: string(reason), Remote: true}, false)
}

// deliverLocked queues a complete reliable message for Receive.
func (c *Conn) deliverLocked(m []byte) {
	c.inMu.Lock()
	c.msgIn = append(c.msgIn, inMessage{b: m})
	c.inMu.Unlock()
	c.stats.messagesRecv++
	c.wakeMsg = true
}

// refuseLocked queues the notice of a message over the limit (its prefix and size).
func (c *Conn) refuseLocked(prefix []byte, size uint64) {
	c.inMu.Lock()
	c.msgIn = append(c.msgIn, inMessage{b: prefix, tooLarge: size, limit: c.maxMessage()})
	c.inMu.Unlock()
	c.stats.messagesTooLarge++
	c.ep.counters.tooLarge.Add(1)
	c.wakeMsg = true
}

func (c *Conn) maxMessage() uint64 { return uint64(c.ep.maxMessage.Load()) }

// heldClosed marks c.held once a closed connection returned its bytes to the budget.
const heldClosed = -1 << 62

// chargeRecv charges n bytes of new work (out-of-order bytes, a datagram) the connection
// is about to hold to the endpoint's receive budget: within half of it and within the
// connection's cap (see reassembly.go); false: they do not fit (nothing is charged).
// Contract: c.mu held.
func (c *Conn) chargeRecv(n int) bool {
	return c.takeRecv(n, false)
}

// reserveRecv charges a message's reservation: within the whole budget and the
// connection's cap. Contract: c.mu held.
func (c *Conn) reserveRecv(n int) bool {
	return c.takeRecv(n, true)
}

// takeRecv charges n bytes to the connection's cap and the endpoint's budget (a
// reservation within the whole budget, new work within half); false: nothing is
// charged. Contract: c.mu held.
//
// It is on the read loop once per message, as releaseRecv is on the application's
// goroutine: each touches c.held with one read-modify-write (charged first, returned if
// over the cap), not a load and then a write, so that the cache line the two goroutines
// share moves once per message each way (BenchmarkOneWay256). A concurrent release may
// see the charge before it is returned; that only counts the connection fuller for that
// moment.
func (c *Conn) takeRecv(n int, reservation bool) bool {
	if c.closed {
		return false
	}
	if c.held.Add(int64(n)) > c.connRecvCap() {
		c.held.Add(-int64(n))
		return false
	}
	if !c.ep.recv.take(int64(n), reservation) {
		c.held.Add(-int64(n))
		return false
	}
	return true
}

// connRecvCap is what one connection may hold: half the budget, and at least two of the
// largest messages (one being read while the application has not taken the last).
func (c *Conn) connRecvCap() int64 {
	return max(c.ep.recv.limit/2, 2*(int64(c.maxMessage())+8))
}

// maxOutOfOrder is what one connection may hold out of order: MaxRecvOutOfOrder, at most
// an eighth of the budget (so that out-of-order bytes of a few connections cannot take
// all of the half kept for new work).
func (c *Conn) maxOutOfOrder() int {
	return int(min(MaxRecvOutOfOrder, c.ep.recv.limit/8))
}

// releaseRecv returns n bytes charged by chargeRecv (nothing once the connection released
// everything at close). Contract: any goroutine.
func (c *Conn) releaseRecv(n int) {
	if n == 0 {
		return
	}
	// Open, c.held is at least the n charged, so it stays >= 0; closed (releaseAllRecv
	// swapped in heldClosed, far below -n) it stays negative. Whichever of the two comes
	// first, the bytes are returned to the budget once: here or by releaseAllRecv's swap.
	if c.held.Add(-int64(n)) >= 0 {
		c.ep.recv.give(int64(n))
	}
}

// releaseAllRecv returns everything the connection holds to the budget. Contract: called
// once, by closeLocked (c.mu held); messages taken later are not charged again.
func (c *Conn) releaseAllRecv() {
	if h := c.held.Swap(heldClosed); h > 0 {
		c.ep.recv.give(h)
	}
}

// recentGapLocked reports whether a packet number within the last RecentGapWindow numbers
// is missing: on a lossy path every packet is acknowledged at once, so that the sender's
// small window is not stalled by a delayed (and possibly lost) ACK.
func (c *Conn) recentGapLocked() bool {
	n := len(c.recvPNs)
	return n > 1 && c.recvPNs[n-2].end+RecentGapWindow > c.recvPNs[n-1].end
}
