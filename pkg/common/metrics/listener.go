package metrics

import (
	"errors"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Timeout phases, the values of mxp_http_timeouts_total's phase label.
const (
	PhaseHeader = "header" // the first request's headers did not arrive in time
	PhaseBody   = "body"   // the request (its body) was still arriving at the read timeout
	PhaseIdle   = "idle"   // a keep-alive connection sent no (complete) next request
	PhaseWrite  = "write"  // the client did not take the response in time
)

// serverMetrics are one HTTP server's connection metrics.
type serverMetrics struct {
	open      prometheus.Gauge
	waited    prometheus.Counter
	evictions prometheus.Counter
	refused   prometheus.Counter
	timeouts  *prometheus.CounterVec
}

// newServerMetrics registers mxp_http_connections, mxp_http_connections_waited_total,
// mxp_http_idle_evictions_total, mxp_http_connections_refused_total and
// mxp_http_timeouts_total{phase} on reg, or reuses them when reg already has them (a
// second server on one registry adds to the same series).
func newServerMetrics(reg prometheus.Registerer) *serverMetrics {
	m := &serverMetrics{
		open: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: "http", Name: "connections",
			Help: "HTTP connections open (admin and API server)."}),
		waited: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "http", Name: "connections_waited_total",
			Help: "Connections accepted while max_conns were open: each made an idle one close or waited for a slot."}),
		evictions: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "http", Name: "idle_evictions_total",
			Help: "Idle keep-alive connections closed to make room for a new connection at max_conns."}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "http", Name: "connections_refused_total",
			Help: "Connections closed on accept because their source IP had max_conns_per_ip open."}),
		timeouts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "http", Name: "timeouts_total",
			Help: "HTTP connections cut off by a server timeout, by phase (header, body, idle, write)."}, []string{"phase"}),
	}
	m.open = registerOrReuse(reg, m.open)
	m.waited = registerOrReuse(reg, m.waited)
	m.evictions = registerOrReuse(reg, m.evictions)
	m.refused = registerOrReuse(reg, m.refused)
	m.timeouts = registerOrReuse(reg, m.timeouts)
	for _, p := range []string{PhaseHeader, PhaseBody, PhaseIdle, PhaseWrite} {
		m.timeouts.WithLabelValues(p)
	}
	return m
}

func registerOrReuse[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}

// limitListener serves at most maxConns connections at once and at most maxPerIP from
// one source IP, and tracks each one. At the cap, a new connection takes the place of
// the longest-idle keep-alive connection, so idle connections cannot keep new clients
// (health probes included) out.
type limitListener struct {
	net.Listener
	maxConns int
	maxPerIP int // <= 0: no per-IP cap
	m        *serverMetrics
	done     chan struct{}
	once     sync.Once

	mu      sync.Mutex
	conns   map[*trackedConn]struct{} // open connections, each holding a slot
	perIP   map[netip.Addr]int        // open (or admitted and waiting) connections by source IP
	idleSeq uint64                    // counts transitions to idle: the lowest idleAt idled first
	changed chan struct{}             // closed (then nil) when a slot frees or a connection idles; nil when no one waits
}

func newLimitListener(ln net.Listener, maxConns, maxPerIP int, m *serverMetrics) *limitListener {
	return &limitListener{Listener: ln, maxConns: maxConns, maxPerIP: maxPerIP, m: m, done: make(chan struct{}),
		conns: make(map[*trackedConn]struct{}), perIP: make(map[netip.Addr]int)}
}

// Accept returns the next connection admitted within the caps.
// Contract: every returned conn holds one slot and one count of its source IP until its
// Close. A connection whose source IP already has maxPerIP open is closed at once and
// counted (refused). At maxConns open, the arrival is counted (waited) and closes the
// longest-idle connection (counted: evictions); with none idle it waits until a
// connection closes or turns idle, or the listener closes.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		tc, err := l.admit(c)
		if err != nil {
			return nil, err
		}
		if tc != nil {
			l.m.open.Inc()
			return tc, nil
		}
	}
}

// admit applies the per-IP cap and waits for a slot for c. It returns nil, nil when c
// was refused (and closed), and net.ErrClosed (c closed) when the listener closed while
// c waited.
func (l *limitListener) admit(c net.Conn) (*trackedConn, error) {
	ip := sourceIP(c.RemoteAddr())
	l.mu.Lock()
	if ip.IsValid() {
		if l.maxPerIP > 0 && l.perIP[ip] >= l.maxPerIP {
			l.mu.Unlock()
			l.m.refused.Inc()
			c.Close()
			return nil, nil
		}
		l.perIP[ip]++ // counted while it waits too: one source cannot queue past its cap
	}
	for waited := false; len(l.conns) >= l.maxConns; {
		if !waited {
			waited = true
			l.m.waited.Inc()
		}
		if victim := l.longestIdleLocked(); victim != nil {
			victim.evicted = true
			l.mu.Unlock()
			l.m.evictions.Inc()
			victim.Close() // frees its slot (or its server goroutine is doing so)
			l.mu.Lock()
			continue
		}
		changed := l.changedLocked()
		l.mu.Unlock()
		select {
		case <-changed:
		case <-l.done:
			l.mu.Lock()
			l.releaseIPLocked(ip)
			l.mu.Unlock()
			c.Close()
			return nil, net.ErrClosed
		}
		l.mu.Lock()
	}
	tc := &trackedConn{Conn: c, l: l, ip: ip}
	l.conns[tc] = struct{}{}
	l.mu.Unlock()
	return tc, nil
}

// longestIdleLocked is the open connection that has been idle (between keep-alive
// requests) longest and is not already being evicted, or nil.
func (l *limitListener) longestIdleLocked() *trackedConn {
	var victim *trackedConn
	for c := range l.conns {
		if c.evicted || http.ConnState(c.state.Load()) != http.StateIdle {
			continue
		}
		if victim == nil || c.idleAt < victim.idleAt {
			victim = c
		}
	}
	return victim
}

// changedLocked is the channel the next slot release or idle transition closes.
func (l *limitListener) changedLocked() chan struct{} {
	if l.changed == nil {
		l.changed = make(chan struct{})
	}
	return l.changed
}

// signalLocked wakes whoever waits on changedLocked.
func (l *limitListener) signalLocked() {
	if l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
}

func (l *limitListener) releaseIPLocked(ip netip.Addr) {
	if !ip.IsValid() {
		return
	}
	if n := l.perIP[ip] - 1; n > 0 {
		l.perIP[ip] = n
	} else {
		delete(l.perIP, ip)
	}
}

// release removes a closed connection: its slot and its source IP's count are free.
// Contract: called once per admitted connection, by its first Close.
func (l *limitListener) release(c *trackedConn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.releaseIPLocked(c.ip)
	l.signalLocked()
	l.mu.Unlock()
}

// idled records that c now waits for its next keep-alive request.
// Contract: called on every transition to http.StateIdle; it orders c after every
// connection that idled before it and wakes an Accept waiting for room.
func (l *limitListener) idled(c *trackedConn) {
	l.mu.Lock()
	l.idleSeq++
	c.idleAt = l.idleSeq
	c.state.Store(int32(http.StateIdle))
	l.signalLocked()
	l.mu.Unlock()
}

// sourceIP is a TCP connection's remote IP (IPv4-mapped IPv6 as IPv4), or the zero Addr
// for another kind of connection (not capped per IP).
func sourceIP(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ta.IP); ok {
			return ip.Unmap()
		}
	}
	return netip.Addr{}
}

// Close stops Accept, including one waiting for a slot.
func (l *limitListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// abortDeadline is below any deadline a timeout sets: net/http sets a read deadline in
// the past (1970) to abort its own background read, which is not a client's fault.
var abortDeadline = time.Unix(1<<20, 0).UnixNano()

// trackedConn is a served connection: it frees its slot on Close and counts the first
// timeout that cuts it off, by the phase net/http reported through ConnState.
type trackedConn struct {
	net.Conn
	l            *limitListener
	ip           netip.Addr   // source IP, zero when not TCP
	idleAt       uint64       // l.idleSeq when it last turned idle; guarded by l.mu
	evicted      bool         // chosen to make room; guarded by l.mu
	state        atomic.Int32 // http.ConnState
	readDeadline atomic.Int64 // unix nanoseconds of the last read deadline set, 0 for none
	counted      atomic.Bool
	closed       atomic.Bool
}

func (c *trackedConn) SetReadDeadline(t time.Time) error {
	c.readDeadline.Store(unixNanoOrZero(t))
	return c.Conn.SetReadDeadline(t)
}

func (c *trackedConn) SetDeadline(t time.Time) error {
	c.readDeadline.Store(unixNanoOrZero(t))
	return c.Conn.SetDeadline(t)
}

func unixNanoOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) && c.readDeadline.Load() > abortDeadline {
		phase := PhaseBody
		switch http.ConnState(c.state.Load()) {
		case http.StateNew:
			phase = PhaseHeader
		case http.StateIdle:
			phase = PhaseIdle
		}
		c.countTimeout(phase)
	}
	return n, err
}

func (c *trackedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		c.countTimeout(PhaseWrite)
	}
	return n, err
}

func (c *trackedConn) countTimeout(phase string) {
	if c.counted.CompareAndSwap(false, true) {
		c.l.m.timeouts.WithLabelValues(phase).Inc()
	}
}

// CloseWrite half-closes a TCP connection: net/http sends its last response with a FIN
// before closing a connection whose body it stopped reading.
func (c *trackedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Close closes the connection and frees its slot, once.
func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		c.l.m.open.Dec()
		c.l.release(c)
	}
	return err
}

// trackState is the server's ConnState hook: it tells each trackedConn its phase, and
// its listener when it turns idle (a candidate for eviction).
func trackState(c net.Conn, st http.ConnState) {
	if tc, ok := c.(*trackedConn); ok {
		if st == http.StateIdle {
			tc.l.idled(tc)
			return
		}
		tc.state.Store(int32(st))
	}
}
