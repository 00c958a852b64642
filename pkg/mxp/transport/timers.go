package transport

import "time"

// armTimerLocked sets the connection's one timer to the earliest deadline: delayed ACK,
// loss time, retransmission timeout, liveness (dead peer, probe), keepalive, idle timeout,
// handshake retry, rekey.
// Contract: called with c.mu held after anything that moves a deadline.
func (c *Conn) armTimerLocked(now time.Time) {
	if c.closed {
		return
	}
	next := c.lastRecv.Add(c.cfg.IdleTimeout)
	earlier := func(t time.Time) {
		if !t.IsZero() && t.Before(next) {
			next = t
		}
	}
	if c.ackQueue > 0 {
		earlier(c.ackDue)
	}
	earlier(c.lossTime)
	earlier(c.rtoDeadline())
	earlier(c.livenessDeadlineLocked())
	if c.current != nil {
		earlier(c.lastSend.Add(c.cfg.KeepaliveInterval))
		earlier(c.current.created.Add(c.cfg.RejectAfter))
		if c.isClient && c.hs.st == nil {
			earlier(c.current.created.Add(c.cfg.RekeyAfter))
		}
	} else if !c.isClient {
		earlier(c.created.Add(c.cfg.HandshakeTimeout))
	}
	if c.hs.st != nil {
		earlier(c.hs.nextRetry)
	}
	if c.rcv.waiting {
		earlier(c.recvRetryAt)
	}
	if c.timerAt.IsZero() || next.Before(c.timerAt) || !c.timerAt.After(now) {
		c.timerAt = next
		c.timer.Reset(max(next.Sub(now), 0))
	}
}

// onTimer runs when the timer fires: it handles every expired deadline, sends what is
// due and re-arms. Contract: the timer's only callback.
func (c *Conn) onTimer() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	now := time.Now()
	scheduled := c.timerAt
	c.timerAt = time.Time{}
	switch {
	case now.Sub(c.lastRecv) >= c.cfg.IdleTimeout:
		c.closeLocked(&CloseError{Code: CloseIdle, Reason: "idle timeout", cause: ErrIdleTimeout}, true)
		return
	case c.current == nil && !c.isClient && now.Sub(c.created) >= c.cfg.HandshakeTimeout:
		c.closeLocked(&CloseError{Code: CloseNormal, Reason: "handshake not confirmed", cause: ErrHandshakeTimeout}, false)
		return
	case c.current != nil && c.current.expired(now, c.cfg.RejectAfter):
		c.closeLocked(&CloseError{Code: CloseNormal, Reason: "keys expired", cause: ErrKeysExpired}, false)
		return
	case c.checkLivenessLocked(now, scheduled):
		return
	}
	if c.hs.st != nil && !now.Before(c.hs.nextRetry) {
		if !c.hs.done && now.Sub(c.hs.started) >= c.cfg.HandshakeTimeout {
			c.closeLocked(&CloseError{Code: CloseNormal, Reason: "handshake timed out", cause: ErrHandshakeTimeout}, false)
			return
		}
		c.startHandshakeLocked(now)
	}
	if c.isClient && c.current != nil && c.hs.st == nil && now.Sub(c.current.created) >= c.cfg.RekeyAfter {
		c.startHandshakeLocked(now)
	}
	if !c.lossTime.IsZero() && !now.Before(c.lossTime) {
		c.detectLossLocked(now)
		c.sent.compact()
	}
	if d := c.rtoDeadline(); !d.IsZero() && !now.Before(d) {
		c.onRTOLocked(now)
	}
	if c.current != nil && now.Sub(c.lastSend) >= c.cfg.KeepaliveInterval {
		c.pingDue = true
	}
	if !c.retryRecvLocked(now) {
		return
	}
	c.reorder.forget(now, c.cc.inFlight)
	c.flushLocked(now)
	c.armTimerLocked(now)
}
