package transport

import (
	"net"
	"net/netip"
	"time"
)

// hsState is an initiator's handshake in progress (first connection or rekey).
type hsState struct {
	index     uint32          // local index of the pending initiation (0: none)
	st        *initiatorState // ephemeral state; nil when no handshake is pending
	started   time.Time
	nextRetry time.Time
	backoff   time.Duration
	cookie    [MACSize]byte
	cookieAt  time.Time // zero: no cookie
	done      bool      // the first handshake completed
}

// startHandshakeLocked sends a new initiation (fresh ephemeral key, timestamp and index).
// Contract: initiator only, c.mu held; called to connect, to rekey and on retransmission.
func (c *Conn) startHandshakeLocked(now time.Time) {
	if c.hs.st == nil {
		c.hs.started = now
		c.hs.backoff = RekeyTimeout
	}
	if c.hs.index != 0 {
		c.ep.index.remove(c.hs.index)
	}
	c.hs.index = c.ep.index.newIndex(indexEntry{conn: c})
	var cookie *[MACSize]byte
	if !c.hs.cookieAt.IsZero() && now.Sub(c.hs.cookieAt) < CookieValidTime {
		cookie = &c.hs.cookie
	}
	st, err := createInitiation(c.ep.local, &c.peer, c.hs.index, nextTimestamp(), c.connID, cookie)
	if err != nil {
		c.closeLocked(&CloseError{Code: CloseProtocolError, Reason: err.Error()}, false)
		return
	}
	c.hs.st = st
	c.hs.nextRetry = now.Add(c.hs.backoff)
	c.hs.backoff = min(2*c.hs.backoff, RekeyTimeoutMax)
	c.stats.handshakesSent++
	c.ep.writeTo(st.packet[:], c.remote)
	c.armTimerLocked(now)
}

// handleResponse completes the initiator's handshake. Contract: called by the read loop
// for a response addressed to this connection's pending index.
func (c *Conn) handleResponse(idx uint32, b []byte, src netip.AddrPort, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.hs.st == nil || idx != c.hs.index {
		return
	}
	if !c.ep.cookies.checkMAC1(b) {
		c.ep.counters.mac1Failed.Add(1)
		return
	}
	keys, err := consumeResponse(c.ep.local, &c.peer, (*[KeySize]byte)(&c.cfg.PresharedKey), c.hs.st, b)
	if err != nil {
		c.ep.counters.authFailed.Add(1)
		return
	}
	sender, _, _ := parseResponseHeader(b)
	kp := newKeypair(keys, idx, sender, true, now)
	c.ep.index.set(idx, indexEntry{conn: c, kp: kp})
	if c.previous != nil {
		c.ep.index.remove(c.previous.localIndex)
	}
	c.previous, c.current = c.current, kp
	c.hs.st, c.hs.index = nil, 0
	c.ep.counters.handshakesDone.Add(1)
	c.stats.rekeys++
	c.lastRecv = now
	c.setRemoteLocked(src)
	c.pingDue = true // the responder needs one data packet to confirm the keys
	if !c.hs.done {
		c.hs.done = true
		close(c.hsDone)
	}
	c.flushLocked(now)
}

// handleCookieReply stores the cookie from a responder under load and retries at once.
func (c *Conn) handleCookieReply(b []byte, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.hs.st == nil {
		return
	}
	ck, err := openCookieReply(&c.peer, b, c.hs.st.packet[:])
	if err != nil {
		c.ep.counters.authFailed.Add(1) // a handshake packet (cookie reply) that failed to open
		return
	}
	first := c.hs.cookieAt.IsZero() || now.Sub(c.hs.cookieAt) > time.Second
	c.hs.cookie, c.hs.cookieAt = ck, now
	c.stats.cookiesReceived++
	if first {
		c.startHandshakeLocked(now)
	}
}

// acceptInitiation answers an authenticated initiation (new connection or rekey).
// Contract: responder only; called by the read loop after the replay check.
func (c *Conn) acceptInitiation(in *initiation, src netip.AddrPort, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	idx := c.ep.index.newIndex(indexEntry{conn: c})
	pkt, keys, err := createResponse(in, (*[KeySize]byte)(&c.cfg.PresharedKey), idx, &c.peer, nil)
	if err != nil {
		c.ep.index.remove(idx)
		c.ep.counters.authFailed.Add(1)
		return
	}
	kp := newKeypair(keys, idx, in.senderIndex, false, now)
	c.ep.index.set(idx, indexEntry{conn: c, kp: kp})
	if c.next != nil {
		c.ep.index.remove(c.next.localIndex)
	}
	c.next = kp
	c.ep.writeTo(pkt[:], src)
	c.armTimerLocked(now)
}

// promoteNextLocked makes the responder's confirmed next keypair current. Contract:
// called when the first packet under c.next authenticates.
func (c *Conn) promoteNextLocked() {
	if c.previous != nil {
		c.ep.index.remove(c.previous.localIndex)
	}
	c.previous, c.current, c.next = c.current, c.next, nil
	c.stats.rekeys++
	c.ep.counters.handshakesDone.Add(1)
	if !c.accepted && c.listener != nil {
		c.accepted = true
		c.listener.confirmed(c)
		c.listener.deliver(c)
	}
}

// setRemoteLocked follows the peer to a new address (roaming), as WireGuard does: only
// authenticated packets move it.
func (c *Conn) setRemoteLocked(src netip.AddrPort) {
	if src != c.remote && !c.ep.connected {
		c.remote = src
		c.remoteUA = net.UDPAddrFromAddrPort(src)
	}
}
