package transport

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Listener accepts secure connections on one UDP socket.
type Listener struct {
	ep  *endpoint
	cfg *Config // a pointer, so that a %v of the Listener prints no key (see staticIdentity)

	mu         sync.Mutex
	conns      map[connKey]*Conn
	timestamps map[PublicKey][TimestampSize]byte // greatest initiation timestamp per client key
	sources    map[netip.Addr]*sourceConns       // connections per source (see admission.go)
	pending    int                               // connections not yet confirmed
	closed     bool

	perSource *rateLimiter[netip.Addr] // proven initiations per source, under load (read loop)
	perKey    *rateLimiter[PublicKey]  // authenticated initiations per client key, under load (worker)

	accept   chan *Conn
	done     chan struct{}
	load     loadMeter
	hsQueue  chan handshakeJob // initiations waiting for the handshake worker
	wg       sync.WaitGroup    // the handshake worker
	evicting atomic.Bool       // an eviction over the receive budget runs (recvbudget.go)
}

// connKey names a connection on a Listener: the client's key and its connection id.
type connKey struct {
	peer PublicKey
	id   uint64
}

// Listen opens a UDP socket on addr ("127.0.0.1:9000", ":0") and accepts connections.
func Listen(ctx context.Context, addr string, cfg Config) (*Listener, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	network := "udp"
	if ua.IP != nil && ua.IP.To4() != nil {
		network = "udp4"
	} else if ua.IP != nil {
		network = "udp6"
	}
	l := &Listener{
		cfg:        &cfg,
		conns:      make(map[connKey]*Conn),
		timestamps: make(map[PublicKey][TimestampSize]byte),
		sources:    make(map[netip.Addr]*sourceConns),
		perSource:  newRateLimiter[netip.Addr](cfg.HandshakeRatePerSource, cfg.HandshakeBurstPerSource),
		perKey:     newRateLimiter[PublicKey](cfg.HandshakeRatePerKey, cfg.HandshakeBurstPerKey),
		accept:     make(chan *Conn, 128),
		done:       make(chan struct{}),
		load:       loadMeter{limit: cfg.UnderLoadHandshakes},
		hsQueue:    make(chan handshakeJob, HandshakeQueueSize),
	}
	ep, err := newEndpoint(network, ua, nil, l.cfg)
	if err != nil {
		return nil, err
	}
	ep.listener = l
	l.ep = ep
	l.wg.Add(1)
	go l.handshakeWorker()
	ep.start()
	return l, nil
}

// Addr is the local address of the socket.
func (l *Listener) Addr() net.Addr { return l.ep.udp.LocalAddr() }

// PublicKey is the listener's identity, which clients pin.
func (l *Listener) PublicKey() PublicKey { return l.ep.local.public }

// Accept waits for the next connection whose client has proven its keys and address
// (its first data packet arrived).
func (l *Listener) Accept(ctx context.Context) (*Conn, error) {
	select {
	case c := <-l.accept:
		return c, nil
	case <-l.done:
		return nil, ErrListenerClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close closes every connection (without lingering) and the socket.
func (l *Listener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		if !l.ep.onReadLoop() {
			// Closed from a handler, perhaps: this caller still waits for the read loop.
			<-l.ep.done
		}
		return nil
	}
	l.closed = true
	close(l.done)
	conns := make([]*Conn, 0, len(l.conns))
	for _, c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		c.closeNow(&CloseError{Code: CloseNormal, Reason: "listener closed"}, true)
	}
	if l.ep.onReadLoop() {
		l.ep.shutdown() // from OnMessage: the read loop ends when the handler returns
	} else {
		l.ep.close()
	}
	l.wg.Wait()
	return nil
}

// SetMaxMessageSize changes Config.MaxMessageSize for every connection (a message whose
// length prefix arrives from now on is judged against n); n outside 1..MaxMessageSize
// means MaxMessageSize, and n is capped at Config.RecvBudget/2 − 8 (see RecvBudget). The
// edge calls it when its configuration is reloaded.
func (l *Listener) SetMaxMessageSize(n int) {
	if n <= 0 || n > MaxMessageSize {
		n = MaxMessageSize
	}
	n = min(n, int(l.ep.recv.limit/2)-8)
	l.ep.maxMessage.Store(int64(n))
}

// Stats returns the listener's socket-level counters.
func (l *Listener) Stats() ListenerStats {
	l.mu.Lock()
	conns, pending := len(l.conns), l.pending
	l.mu.Unlock()
	st := l.ep.listenerStats(conns)
	st.PendingHandshakes = pending
	return st
}

// handleInitiation is the cheap half of the responder's side of message 1 (size, type,
// mac1, and under load the cookie and the source's token bucket); it queues the rest for
// the handshake worker. Contract: called by the read loop for every initiation; it keeps
// no state for a packet until the packet is authenticated and, under load, until its
// source address is proven by a cookie; only a proven packet takes a token from its
// source's bucket (so a spoofer cannot spend a victim's tokens). The listener counts as
// under load above UnderLoadHandshakes per second or when the worker's queue is 1/8 full.
func (l *Listener) handleInitiation(b []byte, src netip.AddrPort, now time.Time) {
	ep := l.ep
	if err := parseInitiationHeader(b); err != nil {
		ep.counters.malformed.Add(1)
		return
	}
	if !ep.cookies.checkMAC1(b) {
		ep.counters.mac1Failed.Add(1)
		return
	}
	busy := l.load.underLoad(now) || len(l.hsQueue) >= cap(l.hsQueue)/8
	if busy && !ep.cookies.checkMAC2(b, src, now) {
		var reply [CookieReplySize]byte
		idx := uint32(b[initOffSender]) | uint32(b[initOffSender+1])<<8 | uint32(b[initOffSender+2])<<16 | uint32(b[initOffSender+3])<<24
		ep.cookies.writeCookieReply(&reply, b, idx, src, now)
		ep.writeTo(reply[:], src)
		ep.counters.mac2Missing.Add(1)
		ep.counters.cookiesSent.Add(1)
		return
	}
	if busy && !l.perSource.allow(sourceOf(src), now) {
		ep.counters.rateLimitedSource.Add(1) // the initiator retransmits with backoff
		return
	}
	job := handshakeJob{src: src, at: now, underLoad: busy}
	copy(job.pkt[:], b)
	select {
	case l.hsQueue <- job:
	default:
		ep.counters.hsDropped.Add(1) // the queue is full: the initiator retransmits
	}
}

// handshakeJob is an initiation that passed the cheap checks, waiting for the DH work.
type handshakeJob struct {
	pkt       [InitiationSize]byte
	src       netip.AddrPort
	at        time.Time
	underLoad bool // the listener was under load: the per-key bucket applies
}

// handshakeWorker does the expensive half of the responder's work off the read loop, so
// that a burst of initiations does not delay data packets. It returns when the listener
// closes.
func (l *Listener) handshakeWorker() {
	defer l.wg.Done()
	for {
		select {
		case job := <-l.hsQueue:
			l.completeInitiation(job.pkt[:], job.src, job.at, job.underLoad)
		case <-l.done:
			return
		}
	}
}

// completeInitiation authenticates an initiation, checks the allow-list, the replay
// timestamp, under load the client key's token bucket, and for a new connection the
// caps (admission.go), and answers it. Contract: called by the handshake worker only.
func (l *Listener) completeInitiation(b []byte, src netip.AddrPort, now time.Time, underLoad bool) {
	ep := l.ep
	in, err := consumeInitiation(ep.local, b)
	if err != nil {
		ep.counters.authFailed.Add(1)
		return
	}
	if l.cfg.AllowPeer != nil && !l.cfg.AllowPeer(in.static) {
		ep.counters.refused.Add(1)
		return
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	if last, seen := l.timestamps[in.static]; seen && bytes.Compare(in.timestamp[:], last[:]) <= 0 {
		l.mu.Unlock()
		ep.counters.initReplayed.Add(1)
		return
	}
	// After the replay check, so that a replayed initiation cannot spend a key's tokens.
	if underLoad && !l.perKey.allow(in.static, now) {
		l.mu.Unlock()
		ep.counters.rateLimitedKey.Add(1)
		return
	}
	key := connKey{in.static, in.connID}
	c, exists := l.conns[key]
	if !exists {
		if reason := l.admitLocked(sourceOf(src)); reason != "" {
			l.mu.Unlock()
			l.refuse(in, src, now, reason)
			return
		}
	}
	if len(l.timestamps) >= MaxTrackedPeers {
		for k := range l.timestamps { // forget an arbitrary key (see docs: MaxTrackedPeers)
			delete(l.timestamps, k)
			break
		}
	}
	l.timestamps[in.static] = in.timestamp
	if !exists {
		c = newConn(ep, l.cfg, newPeerKeys(in.static), in.connID, src, false, now)
		c.listener = l
		c.source, c.pendingAdmit = sourceOf(src), true
		l.conns[key] = c
	}
	l.mu.Unlock()
	c.acceptInitiation(in, src, now)
}

// removeConn forgets a closed connection.
func (l *Listener) removeConn(c *Conn) {
	l.mu.Lock()
	if l.conns[connKey{c.peer.public, c.connID}] == c {
		delete(l.conns, connKey{c.peer.public, c.connID})
		l.releaseLocked(c)
	}
	l.mu.Unlock()
}

// deliver hands a confirmed connection to Accept; it is closed when nobody can take it.
// Called with c.mu held.
func (l *Listener) deliver(c *Conn) {
	select {
	case l.accept <- c:
	case <-l.done:
	default:
		if l.cfg.OnMessage == nil {
			c.closeLocked(&CloseError{Code: CloseNormal, Reason: "accept queue full"}, true)
		}
	}
}
