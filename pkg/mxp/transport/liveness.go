package transport

import (
	"errors"
	"fmt"
	"syscall"
	"time"
)

// Liveness: a connection notices a dead peer from its own traffic, without extra packets
// on an idle connection.
//
// Every ack-eliciting packet (data, a retransmission, a keepalive PING, a probe) obliges a
// live peer to acknowledge within an RTT plus MaxAckDelay. The first such packet sent
// after the last authenticated packet received starts the unanswered clock; any
// authenticated packet stops it. When it reaches the dead-peer timeout, and at least
// MinDeadPeerProbes probes (retransmission timeouts, which back off, or liveness PINGs)
// went unanswered meanwhile, the last of them given a retransmission timeout (RTO) to be
// answered, the connection closes with ErrPeerUnreachable. The dead-peer timeout is
// max(DeadPeerTimeout, DeadPeerPTOs×RTO), the RTO from the RTT estimate without backoff:
// on a path whose round trip is a large part of DeadPeerTimeout (a 1.5 s satellite hop)
// a peer is not condemned for the path's own delay. A loss burst longer than the timeout
// on a fast path still closes the connection: nothing tells it from a dead peer. An idle
// connection notices a dead peer within KeepaliveInterval plus the timeout.
//
// That leaves the case where nothing is in flight but the application waits: the edge
// delivered a Call, the agent acknowledged it and was killed; a client's Call was
// acknowledged by an edge that then died. The waiting side calls Await: while an Await
// is outstanding, a peer silent for DeadPeerTimeout/ProbeDivisor gets a PING, whose
// missing acknowledgement starts the clock. So a peer that dies while it owes an answer
// is noticed within DeadPeerTimeout*(1+1/ProbeDivisor), and only connections with
// outstanding requests send probes.
//
// A dialled connection's socket is connected, so on Linux it also learns from an ICMP
// port unreachable that nothing listens at the peer's address (ECONNREFUSED). During the
// handshake that ends the dial at once; afterwards (an ICMP message is not
// authenticated, and anyone who knows the addresses could forge one) it only starts a
// probe, and DeadPeerTimeout decides.

// errRefused is the cause of a dial ended by an ICMP port unreachable.
var errRefused = fmt.Errorf("%w: %w", ErrPeerUnreachable, syscall.ECONNREFUSED)

// Await tells the connection that the application waits for an answer from the peer to
// something it sent (a request). While at least one Await is outstanding the peer is
// probed when silent, so its death is noticed within about DeadPeerTimeout even when
// nothing is in flight. Each Await must be matched by one EndAwait.
// Contract: an atomic add, plus arming the timer when the count leaves zero.
func (c *Conn) Await() {
	if c.awaiting.Add(1) != 1 {
		return
	}
	c.mu.Lock()
	if !c.closed {
		c.armTimerLocked(time.Now())
	}
	c.mu.Unlock()
}

// EndAwait ends one Await (the answer came, or the application stopped waiting).
// Contract: an atomic add; the timer notices a count of zero when it next fires.
func (c *Conn) EndAwait() { c.awaiting.Add(-1) }

// probeIntervalLocked is how long a peer that owes an answer may stay silent before it is
// probed; zero when probing is off.
func (c *Conn) probeIntervalLocked() time.Duration {
	if c.cfg.DeadPeerTimeout <= 0 {
		return 0
	}
	return c.cfg.DeadPeerTimeout / ProbeDivisor
}

// deadPeerTimeoutLocked is the dead-peer timeout: DeadPeerTimeout, or DeadPeerPTOs
// retransmission timeouts when that is longer (see the notes above).
func (c *Conn) deadPeerTimeoutLocked() time.Duration {
	return max(c.cfg.DeadPeerTimeout, DeadPeerPTOs*c.rtt.rto())
}

// probedLocked counts a probe sent while the unanswered clock runs.
// Contract: called for each retransmission timeout and each liveness PING, with c.mu held.
func (c *Conn) probedLocked(now time.Time) {
	if !c.unanswered.IsZero() {
		c.deadProbes++
		c.lastProbe = now
	}
}

// livenessDeadlineLocked is the next time the liveness rules need the timer: when the
// unanswered clock reaches DeadPeerTimeout, or when an awaited peer is due for a probe.
// Zero: no deadline.
func (c *Conn) livenessDeadlineLocked() time.Time {
	if c.cfg.DeadPeerTimeout <= 0 || c.current == nil {
		return time.Time{}
	}
	if !c.unanswered.IsZero() {
		d := c.unanswered.Add(c.deadPeerTimeoutLocked())
		if c.deadProbes > 0 {
			d = later(d, c.lastProbe.Add(c.rtt.rto()))
		}
		return d
	}
	if c.awaiting.Load() > 0 {
		return c.lastRecv.Add(c.probeIntervalLocked())
	}
	return time.Time{}
}

// sentElicitingLocked starts the unanswered clock, if it is not running.
// Contract: called by flushLocked for every ack-eliciting packet it sends.
func (c *Conn) sentElicitingLocked(now time.Time) {
	if c.unanswered.IsZero() {
		c.unanswered = now
	}
}

// heardLocked stops the unanswered clock. Contract: called for every authenticated packet
// received, with lastRecv already set.
func (c *Conn) heardLocked() {
	c.unanswered, c.deadProbes, c.lastProbe = time.Time{}, 0, time.Time{}
}

// later returns the later of two times.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// checkLivenessLocked closes the connection when the peer owed an answer for the
// dead-peer timeout and left MinDeadPeerProbes probes unanswered, and otherwise asks for a probe PING when one is due. It reports
// whether it closed. scheduled is when the timer was due: a timer that fires more than a
// probe interval late means this process was not running (stopped, suspended, starved),
// so the peer's answers may be waiting unread in the socket; the clock then restarts
// with a probe instead of condemning the peer for our own silence.
// Contract: called by onTimer with c.mu held.
func (c *Conn) checkLivenessLocked(now, scheduled time.Time) bool {
	if c.cfg.DeadPeerTimeout <= 0 || c.current == nil {
		return false
	}
	if !c.unanswered.IsZero() {
		if !scheduled.IsZero() && now.Sub(scheduled) > c.probeIntervalLocked() {
			c.unanswered, c.deadProbes, c.pingDue = now, 0, true
			return false
		}
		timeout := c.deadPeerTimeoutLocked()
		if now.Sub(c.unanswered) < timeout {
			return false
		}
		if c.deadProbes < MinDeadPeerProbes {
			// Too few probes went out (a quiet connection, a timer that fired once): one
			// more, answered within an RTO by a live peer.
			c.pingDue = true
			c.probedLocked(now)
			return false
		}
		if now.Before(c.lastProbe.Add(c.rtt.rto())) {
			return false
		}
		c.stats.deadPeer++
		c.closeLocked(&CloseError{Code: CloseUnreachable,
			Reason: fmt.Sprintf("no answer from the peer for %v (%d probes)", now.Sub(c.unanswered).Round(time.Millisecond), c.deadProbes),
			cause:  ErrPeerUnreachable}, true)
		return true
	}
	if c.awaiting.Load() > 0 && now.Sub(c.lastRecv) >= c.probeIntervalLocked() {
		c.pingDue = true
	}
	return false
}

// readFailed handles a failed read of the socket: on a dialled connection, an ICMP port
// unreachable (ECONNREFUSED) reports that nothing listens at the peer's address.
// Contract: called by the holder of the read token after a read error.
func (ep *endpoint) readFailed(err error) {
	if c := ep.lend.conn; c != nil && errors.Is(err, syscall.ECONNREFUSED) {
		c.onPortUnreachable()
	}
}

// onPortUnreachable ends a handshake that the peer's host refused, or probes an
// established peer (see the liveness notes above).
func (c *Conn) onPortUnreachable() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.stats.portUnreachable++
	now := time.Now()
	if c.current == nil {
		c.closeLocked(&CloseError{Code: CloseUnreachable, Reason: "nothing listens at " + c.remote.String() + " (ICMP port unreachable)", cause: errRefused}, false)
		return
	}
	if c.unanswered.IsZero() && c.cfg.DeadPeerTimeout > 0 {
		c.pingDue = true
		c.flushLocked(now)
		c.armTimerLocked(now)
	}
}
