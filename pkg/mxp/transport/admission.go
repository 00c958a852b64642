package transport

import "net/netip"

// sourceConns counts the connections one source created on a Listener, and how many of
// them are still unconfirmed (answered, no data packet under the new keys yet).
type sourceConns struct {
	conns, pending int
}

// admitLocked decides whether a new connection from src fits under the caps
// (MaxConnections, MaxPendingHandshakes, MaxConnectionsPerSource, MaxPendingPerSource) and,
// if so, counts it as pending. A refusal is counted by its reason.
// Contract: l.mu held; called by the handshake worker before it creates a connection;
// the caller records src and pending on the connection it creates, so that confirmLocked
// and releaseLocked undo exactly this count.
func (l *Listener) admitLocked(src netip.Addr) bool {
	k := &l.ep.counters
	sc := l.sources[src]
	switch {
	case len(l.conns) >= l.cfg.MaxConnections:
		k.refusedMaxConns.Add(1)
		return false
	case l.pending >= l.cfg.MaxPendingHandshakes:
		k.refusedMaxPending.Add(1)
		return false
	case sc != nil && sc.conns >= l.cfg.MaxConnectionsPerSource:
		k.refusedSourceConns.Add(1)
		return false
	case sc != nil && sc.pending >= l.cfg.MaxPendingPerSource:
		k.refusedSourcePending.Add(1)
		return false
	}
	if sc == nil {
		sc = &sourceConns{}
		l.sources[src] = sc
	}
	sc.conns++
	sc.pending++
	l.pending++
	return true
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
