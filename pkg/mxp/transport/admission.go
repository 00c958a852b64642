package transport

import (
	"crypto/rand"
	"encoding/binary"
	"net/netip"
	"time"
)

// sourceConns counts the connections one source created on a Listener, and how many of
// them are still unconfirmed (answered, no data packet under the new keys yet).
type sourceConns struct {
	conns, pending int
}

// Reasons of a refusal at a cap, sent to the client in its CLOSE frame (CloseRefused).
const (
	refusedMaxConnections = "max_connections"
	refusedMaxPending     = "max_pending"
	refusedSourceConns    = "max_connections_per_source"
	refusedSourcePending  = "max_pending_per_source"
)

// admitLocked decides whether a new connection from src fits under the caps
// (MaxConnections, MaxPendingHandshakes, MaxConnectionsPerSource, MaxPendingPerSource) and,
// if so, counts it as pending; else it returns the refusal's reason, counted.
// Contract: l.mu held; called by the handshake worker before it creates a connection;
// the caller records src and pending on the connection it creates, so that confirmLocked
// and releaseLocked undo exactly this count.
func (l *Listener) admitLocked(src netip.Addr) (refused string) {
	k := &l.ep.counters
	sc := l.sources[src]
	switch {
	case len(l.conns) >= l.cfg.MaxConnections:
		k.refusedMaxConns.Add(1)
		return refusedMaxConnections
	case l.pending >= l.cfg.MaxPendingHandshakes:
		k.refusedMaxPending.Add(1)
		return refusedMaxPending
	case sc != nil && sc.conns >= l.cfg.MaxConnectionsPerSource:
		k.refusedSourceConns.Add(1)
		return refusedSourceConns
	case sc != nil && sc.pending >= l.cfg.MaxPendingPerSource:
		k.refusedSourcePending.Add(1)
		return refusedSourcePending
	}
	if sc == nil {
		sc = &sourceConns{}
		l.sources[src] = sc
	}
	sc.conns++
	sc.pending++
	l.pending++
	return ""
}

// refuse answers an authenticated initiation that a cap turned away with a response (so
// that the initiator derives keys) and, under those keys, one data packet holding a CLOSE
// frame (CloseRefused, the cap's name): the client learns why at once (ErrRefused) instead
// of retransmitting until its handshake timeout. Nothing is kept: no index, no
// connection. The two packets (92 + 32 + the frame bytes) answer a 156-byte initiation:
// no amplification. Contract: called by the handshake worker, without l.mu, after the
// replay check and the token buckets (which bound how often it runs per source and key).
func (l *Listener) refuse(in *initiation, src netip.AddrPort, now time.Time, reason string) {
	var ib [4]byte
	rand.Read(ib[:])
	peer := newPeerKeys(in.static)
	resp, keys, err := createResponse(in, (*[KeySize]byte)(&l.cfg.PresharedKey), binary.LittleEndian.Uint32(ib[:]), &peer, nil)
	if err != nil {
		return
	}
	kp := newKeypair(keys, 0, in.senderIndex, false, now)
	pkt := make([]byte, DataHeaderSize, DataOverhead+16+len(reason))
	putDataHeader(pkt, kp.remoteIndex, 0)
	pkt = appendClose(pkt, CloseRefused, reason)
	n := nonce(0)
	pkt = kp.send.Seal(pkt[:DataHeaderSize], n[:], pkt[DataHeaderSize:], pkt[:DataHeaderSize])
	l.ep.writeTo(resp[:], src)
	l.ep.writeTo(pkt, src)
}

// confirmLocked moves c from pending to confirmed. Contract: l.mu held; called once, when
// the first data packet under c's first keypair authenticates.
func (l *Listener) confirmLocked(c *Conn) {
	if !c.pendingAdmit {
		return
	}
	c.pendingAdmit = false
	l.pending--
	if sc := l.sources[c.source]; sc != nil {
		sc.pending--
	}
}

// releaseLocked gives back what admitLocked counted for c. Contract: l.mu held; called
// once, when c leaves l.conns.
func (l *Listener) releaseLocked(c *Conn) {
	l.confirmLocked(c)
	if sc := l.sources[c.source]; sc != nil {
		if sc.conns--; sc.conns <= 0 {
			delete(l.sources, c.source)
		}
	}
}

// confirmed is confirmLocked for callers that do not hold l.mu. Contract: called with
// c.mu held (lock order c.mu → l.mu), when a responder's connection is first confirmed.
func (l *Listener) confirmed(c *Conn) {
	l.mu.Lock()
	l.confirmLocked(c)
	l.mu.Unlock()
}
