package metrics

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// probeGuard bounds how long a test waits for an answer that the fixed code gives at
// once; the old code gave none before the idle timeout. A guard against a hang, not a
// measurement.
const probeGuard = 10 * time.Second

// keepAlive opens a connection from local (nil: any) to addr, completes one keep-alive
// GET /livez on it and returns it open, idle, with the server waiting for its next
// request.
func keepAlive(t testing.TB, addr string, local net.Addr) net.Conn {
	t.Helper()
	c, err := (&net.Dialer{LocalAddr: local}).Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if code, err := livez(c); err != nil || code != http.StatusOK {
		t.Fatalf("keep-alive GET /livez: %d %v", code, err)
	}
	return c
}

// livez sends GET /livez on c and reads the whole answer, leaving c open.
func livez(c net.Conn) (int, error) {
	if _, err := io.WriteString(c, "GET /livez HTTP/1.1\r\nHost: t\r\n\r\n"); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

// probe is a health probe: a fresh connection, one GET /livez, no keep-alive.
func probe(t testing.TB, addr string) (int, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), probeGuard)
	defer cancel()
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/livez", nil)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// counter reads a counter or gauge of reg by name (0 when it has no such series).
func counter(t *testing.T, reg *Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// The attack of the issue 15 review: one client fills max_conns with keep-alive
// connections left idle after a cheap GET /livez. A health probe then used to wait in
// the accept queue until the idle timeout (120 s) and the orchestrator restarted the
// service. Now the probe's connection makes the longest-idle one close and is answered;
// the eviction is counted.
func TestIdleKeepAlivesDoNotLockOutProbes(t *testing.T) {
	const maxConns = 8
	s, reg := limitedServer(t, ServerLimits{MaxConns: maxConns})
	for range maxConns {
		keepAlive(t, s.Addr(), nil)
	}
	code, err := probe(t, s.Addr())
	if err != nil || code != http.StatusOK {
		t.Fatalf("health probe with %d idle keep-alive connections open (max_conns %d): %d %v", maxConns, maxConns, code, err)
	}
	if got := counter(t, reg, "mxp_http_idle_evictions_total"); got != 1 {
		t.Errorf("mxp_http_idle_evictions_total = %v, want 1", got)
	}
	if got := counter(t, reg, "mxp_http_connections_waited_total"); got != 1 {
		t.Errorf("mxp_http_connections_waited_total = %v, want 1", got)
	}
}

// The per-IP cap: one source IP with max_conns_per_ip open has its next connection
// closed on accept, unanswered and counted; another source is still served. The old
// code served the fifth connection (one IP could take every slot).
func TestMaxConnsPerIP(t *testing.T) {
	const perIP = 4
	s, reg := limitedServer(t, ServerLimits{MaxConnsPerIP: perIP})
	for range perIP {
		keepAlive(t, s.Addr(), nil)
	}
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if code, err := livez(c); err == nil {
		t.Fatalf("connection %d from one IP (max_conns_per_ip %d) was answered: %d", perIP+1, perIP, code)
	}
	if got := counter(t, reg, "mxp_http_connections_refused_total"); got != 1 {
		t.Errorf("mxp_http_connections_refused_total = %v, want 1", got)
	}
	other := keepAlive(t, s.Addr(), &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if code, err := livez(other); err != nil || code != http.StatusOK {
		t.Fatalf("another source IP: %d %v", code, err)
	}
}

// waitListener waits until cond, evaluated under l.mu, holds; it wakes on every slot
// release and idle transition (the signals Accept itself waits on).
func waitListener(l *limitListener, cond func() bool) {
	for {
		l.mu.Lock()
		if cond() {
			l.mu.Unlock()
			return
		}
		ch := l.changedLocked()
		l.mu.Unlock()
		<-ch
	}
}

func idleCountLocked(l *limitListener) int {
	n := 0
	for c := range l.conns {
		if http.ConnState(c.state.Load()) == http.StateIdle {
			n++
		}
	}
	return n
}

// The connection evicted to make room is the one idle longest; the others stay open.
func TestEvictsLongestIdle(t *testing.T) {
	s, _ := limitedServer(t, ServerLimits{MaxConns: 3})
	l := s.ln.(*limitListener)
	var cs []net.Conn
	for i := range 3 {
		cs = append(cs, keepAlive(t, s.Addr(), nil))
		waitListener(l, func() bool { return idleCountLocked(l) == i+1 })
	}
	if code, err := probe(t, s.Addr()); err != nil || code != http.StatusOK {
		t.Fatalf("probe: %d %v", code, err)
	}
	if n, err := cs[0].Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("the longest-idle connection: read %d, %v; want EOF (closed by the server)", n, err)
	}
	waitListener(l, func() bool { return len(l.conns) == 2 }) // the probe's connection closed
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		if a := c.RemoteAddr().String(); a != cs[1].LocalAddr().String() && a != cs[2].LocalAddr().String() {
			t.Errorf("open after the eviction: %s, want only %s and %s", a, cs[1].LocalAddr(), cs[2].LocalAddr())
		}
	}
}

// A source IP's count falls when its connections close: it can connect again, and no
// entry is left once all are closed.
func TestMaxConnsPerIPFreesOnClose(t *testing.T) {
	s, _ := limitedServer(t, ServerLimits{MaxConnsPerIP: 2})
	l := s.ln.(*limitListener)
	a := keepAlive(t, s.Addr(), nil)
	b := keepAlive(t, s.Addr(), nil)
	lo := netip.MustParseAddr("127.0.0.1")
	a.Close()
	waitListener(l, func() bool { return l.perIP[lo] == 1 })
	c := keepAlive(t, s.Addr(), nil)
	b.Close()
	c.Close()
	waitListener(l, func() bool { return len(l.perIP) == 0 && len(l.conns) == 0 })
}

// fakeConn is a connection of the fuzzed listener: it records its Close.
type fakeConn struct {
	net.Conn // nil: only the methods below are called
	remote   net.Addr
	closed   bool
}

func (c *fakeConn) RemoteAddr() net.Addr { return c.remote }
func (c *fakeConn) Close() error         { c.closed = true; return nil }

// fakeListener hands out the connections sent on conns.
type fakeListener struct {
	conns  chan net.Conn
	closed chan struct{}
}

func (l *fakeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}
func (l *fakeListener) Close() error   { close(l.closed); return nil }
func (l *fakeListener) Addr() net.Addr { return &net.TCPAddr{} }

// FuzzLimitListener drives the caps with any sequence of arrivals (from three source
// IPs), idle and active transitions and closes, and checks after each step: at most
// maxConns open, at most maxPerIP per IP, a waiting arrival only while no open
// connection is idle, every arrival accepted, refused or waiting, the gauge and the
// per-IP counts matching the open set, and nothing left after the listener and every
// connection close.
func FuzzLimitListener(f *testing.F) {
	f.Add(uint8(2), uint8(1), []byte{0, 0, 0, 1, 4, 0, 3, 0})
	f.Add(uint8(3), uint8(2), []byte{0, 4, 8, 0, 5, 9, 1, 0, 2, 3, 7})
	f.Fuzz(func(t *testing.T, maxConns, maxPerIP uint8, ops []byte) {
		ops = ops[:min(len(ops), 512)] // longer runs only repeat states of at most 5 slots
		synctest.Test(t, func(t *testing.T) {
			fuzzLimitListener(t, int(maxConns%5)+1, int(maxPerIP%5)-1, ops)
		})
	})
}

func fuzzLimitListener(t *testing.T, maxConns, maxPerIP int, ops []byte) {
	m := newServerMetrics(prometheus.NewRegistry())
	fl := &fakeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
	l := newLimitListener(fl, maxConns, maxPerIP, m)
	accepted := make(chan net.Conn, len(ops))
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	var open []*trackedConn
	var offered []*fakeConn
	for _, op := range ops {
		switch arg := int(op >> 2); op & 3 {
		case 0: // a connection arrives, unless one is already waiting
			if len(offered) > len(open)+int(testutil.ToFloat64(m.refused)) {
				continue // Accept holds the last arrival, waiting for room
			}
			c := &fakeConn{remote: &net.TCPAddr{IP: net.IPv4(10, 0, 0, byte(arg%3)), Port: len(offered)}}
			offered = append(offered, c)
			fl.conns <- c
		case 1, 2: // an open connection turns idle, or active
			if len(open) > 0 {
				st := http.StateIdle
				if op&3 == 2 {
					st = http.StateActive
				}
				trackState(open[arg%len(open)], st)
			}
		case 3: // the server closes an open connection
			if len(open) > 0 {
				open[arg%len(open)].Close()
			}
		}
		synctest.Wait()
		for drained := false; !drained; {
			select {
			case c := <-accepted:
				open = append(open, c.(*trackedConn))
			default:
				drained = true
			}
		}
		checkListener(t, l, m, maxConns, maxPerIP)
	}
	l.Close()
	synctest.Wait()
	for c := range accepted {
		open = append(open, c.(*trackedConn))
	}
	for _, c := range open {
		c.Close()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.conns) != 0 || len(l.perIP) != 0 || testutil.ToFloat64(m.open) != 0 {
		t.Fatalf("after every close: %d conns, per IP %v, gauge %v", len(l.conns), l.perIP, testutil.ToFloat64(m.open))
	}
	for i, c := range offered {
		if !c.closed {
			t.Fatalf("connection %d never closed", i)
		}
	}
}

func checkListener(t *testing.T, l *limitListener, m *serverMetrics, maxConns, maxPerIP int) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.conns) > maxConns {
		t.Fatalf("%d open, max_conns %d", len(l.conns), maxConns)
	}
	sum := 0
	for ip, n := range l.perIP {
		if maxPerIP > 0 && n > maxPerIP {
			t.Fatalf("%d from %v, max_conns_per_ip %d", n, ip, maxPerIP)
		}
		sum += n
	}
	waiting := sum - len(l.conns)
	if waiting != 0 && waiting != 1 {
		t.Fatalf("per-IP counts %v for %d open", l.perIP, len(l.conns))
	}
	if waiting == 1 {
		if len(l.conns) != maxConns {
			t.Fatalf("a connection waits with %d of %d open", len(l.conns), maxConns)
		}
		for c := range l.conns {
			if !c.evicted && http.ConnState(c.state.Load()) == http.StateIdle {
				t.Fatal("a connection waits while an open one is idle")
			}
		}
	}
	if got := testutil.ToFloat64(m.open); int(got) != len(l.conns) {
		t.Fatalf("gauge %v, %d open", got, len(l.conns))
	}
}

// BenchmarkProbeAtIdleCap is the figure of the idle keep-alive attack: a health probe
// against a server whose max_conns (64) are all idle keep-alive connections of one
// client, which reopens the evicted one after each probe, beside the same probe against
// a quiet server in the same run. It reports both latencies and their ratio; the old
// code gave the probe at the cap no answer until the idle timeout.
func BenchmarkProbeAtIdleCap(b *testing.B) {
	const maxConns = 64
	quiet, _ := limitedServer(b, ServerLimits{MaxConns: maxConns})
	full, _ := limitedServer(b, ServerLimits{MaxConns: maxConns, MaxConnsPerIP: -1})
	l := full.ln.(*limitListener)
	held := map[string]net.Conn{} // by local address, the server's remote address
	var quietD, fullD time.Duration
	for b.Loop() {
		for len(held) < maxConns {
			c := keepAlive(b, full.Addr(), nil)
			held[c.LocalAddr().String()] = c
		}
		waitListener(l, func() bool { return idleCountLocked(l) == maxConns })
		start := time.Now()
		if code, err := probe(b, quiet.Addr()); err != nil || code != http.StatusOK {
			b.Fatalf("quiet probe: %d %v", code, err)
		}
		quietD += time.Since(start)
		start = time.Now()
		if code, err := probe(b, full.Addr()); err != nil || code != http.StatusOK {
			b.Fatalf("probe at the idle cap: %d %v", code, err)
		}
		fullD += time.Since(start)
		waitListener(l, func() bool { return len(l.conns) < maxConns }) // the probe has closed
		l.mu.Lock()
		open := map[string]bool{}
		for c := range l.conns {
			open[c.RemoteAddr().String()] = true
		}
		l.mu.Unlock()
		for a, c := range held {
			if !open[a] {
				c.Close()
				delete(held, a)
			}
		}
	}
	n := float64(b.N)
	b.ReportMetric(quietD.Seconds()*1e3/n, "quiet_probe_ms")
	b.ReportMetric(fullD.Seconds()*1e3/n, "idle_cap_probe_ms")
	b.ReportMetric(float64(fullD)/float64(quietD), "idle_cap/quiet")
}
