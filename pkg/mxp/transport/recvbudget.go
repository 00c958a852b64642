package transport

import "time"

// The way out of a full receive budget (reassembly.go, invariants 2 and 5): a stream
// whose next message's reservation did not fit retries it, and a Listener whose budget
// stays full while data is refused evicts the connection that holds the most.

// waitingLocked notes, after STREAM bytes were written, whether the stream waits for a
// reservation: if so, the timer retries it every RecvRetryInterval (bytes already
// acknowledged, held as fragments, may wait behind it with nothing left to resend).
// Contract: c.mu held.
func (c *Conn) waitingLocked(now time.Time) {
	if !c.rcv.waiting {
		c.recvRetryAt = time.Time{}
	} else if c.recvRetryAt.IsZero() {
		c.recvRetryAt = now.Add(RecvRetryInterval)
	}
}

// retryRecvLocked retries a waiting reservation when its time came; it reports false
// when the connection closed (a protocol error in bytes parsed now).
// Contract: c.mu held (onTimer).
func (c *Conn) retryRecvLocked(now time.Time) bool {
	if !c.rcv.waiting || now.Before(c.recvRetryAt) {
		return true
	}
	waiting, err := c.rcv.retry(c)
	if err != nil {
		c.stats.protocolErrors++
		c.closeWith(CloseProtocolError, "bad frame", err)
		return false
	}
	c.recvRetryAt = time.Time{}
	if waiting {
		c.recvRetryAt = now.Add(RecvRetryInterval)
		c.recvRefusedLocked(now)
	}
	if c.wakeMsg {
		if c.cfg.OnMessage == nil {
			c.wakeMsg = false
			signal(c.readable)
		} else {
			// OnMessage runs on the read loop only, for a connection that got a packet:
			// a PING makes the peer answer with one (its sender may have nothing left
			// to send: these bytes were acknowledged as fragments).
			c.pingDue = true
		}
	}
	return true
}

// recvRefusedLocked records that this connection's data was refused; a Listener evicts
// when the budget stalled (recvBudget.refused). A refusal while the budget is at most
// half full is the connection's own caps, not a stalled budget (any reservation fits).
// Contract: c.mu held.
func (c *Conn) recvRefusedLocked(now time.Time) {
	b := &c.ep.recv
	if c.listener != nil && b.held.Load() > b.limit/2 && b.refused(now, RecvStallTimeout) {
		c.listener.evictRecv()
	}
}

// evictRecv closes, on a goroutine of its own, the connection that holds the most of the
// receive budget, with CloseRecvBudget: the budget stayed full for RecvStallTimeout while
// data was refused, so the connections holding it are not reading (or not finishing) what
// they hold. One eviction at a time. Contract: any goroutine, any locks (it takes l.mu and
// the victim's c.mu only on its own goroutine, in that order after the other: never both).
func (l *Listener) evictRecv() {
	if !l.evicting.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer l.evicting.Store(false)
		l.mu.Lock()
		var victim *Conn
		var most int64
		for _, c := range l.conns {
			if h := c.held.Load(); h > most {
				victim, most = c, h
			}
		}
		l.mu.Unlock()
		if victim == nil {
			return
		}
		victim.mu.Lock()
		defer victim.mu.Unlock()
		if !victim.closed {
			l.ep.counters.recvEvictions.Add(1)
			victim.closeLocked(&CloseError{Code: CloseRecvBudget, Reason: "receive budget: this connection held the most of a stalled budget", cause: ErrRecvBudget}, true)
		}
	}()
}
