package metrics

import (
	"errors"
	"net"
	"net/http"
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
	open     prometheus.Gauge
	waited   prometheus.Counter
	timeouts *prometheus.CounterVec
}

// newServerMetrics registers mxp_http_connections, mxp_http_connections_waited_total and
// mxp_http_timeouts_total{phase} on reg, or reuses them when reg already has them (a
// second server on one registry adds to the same series).
func newServerMetrics(reg prometheus.Registerer) *serverMetrics {
	m := &serverMetrics{
		open: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: "http", Name: "connections",
			Help: "HTTP connections open (admin and API server)."}),
		waited: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "http", Name: "connections_waited_total",
			Help: "Connections that had to wait to be accepted because max_conns were open."}),
		timeouts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "http", Name: "timeouts_total",
			Help: "HTTP connections cut off by a server timeout, by phase (header, body, idle, write)."}, []string{"phase"}),
	}
	m.open = registerOrReuse(reg, m.open)
	m.waited = registerOrReuse(reg, m.waited)
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

// limitListener accepts at most cap(slots) connections at once and tracks each one.
type limitListener struct {
	net.Listener
	slots chan struct{}
	m     *serverMetrics
	done  chan struct{}
	once  sync.Once
}

func newLimitListener(ln net.Listener, maxConns int, m *serverMetrics) *limitListener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, maxConns), m: m, done: make(chan struct{})}
}

// Accept waits for a free slot, then for a connection.
// Contract: every returned conn holds one slot until its Close; at the limit, Accept
// counts the wait once and blocks until a slot frees or the listener closes.
func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	default:
		l.m.waited.Inc()
		select {
		case l.slots <- struct{}{}:
		case <-l.done:
			return nil, net.ErrClosed
		}
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	l.m.open.Inc()
	return &trackedConn{Conn: c, l: l}, nil
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
		<-c.l.slots
	}
	return err
}

// trackState is the server's ConnState hook: it tells each trackedConn its phase.
func trackState(c net.Conn, st http.ConnState) {
	if tc, ok := c.(*trackedConn); ok {
		tc.state.Store(int32(st))
	}
}
