package metrics

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mxp-mesh/mesh/pkg/common/health"
)

// limitedServer starts a Server with lim and two routes: POST /upload reads its whole
// body (as a handler that takes a request body does) and GET /sse streams events for
// three write timeouts, extending the write deadline per event.
func limitedServer(t testing.TB, lim ServerLimits) (*Server, *Registry) {
	t.Helper()
	reg := NewRegistry("test")
	s := NewServer(ServerConfig{Addr: "127.0.0.1:0", Limits: lim}, reg, health.NewChecker(nil))
	s.Router().Post("/upload", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, "request body not received in time", http.StatusRequestTimeout)
			return
		}
		fmt.Fprintf(w, "got %d bytes", n)
	})
	s.Router().Get("/sse", func(w http.ResponseWriter, r *http.Request) {
		wt := s.Limits().WriteTimeout
		dl := NewStreamDeadline(w, r)
		rc := http.NewResponseController(w)
		w.Header().Set("Content-Type", "text/event-stream")
		tick := time.NewTicker(wt / 10)
		defer tick.Stop()
		start := time.Now()
		for i := 0; time.Since(start) < 3*wt; i++ {
			dl.Extend()
			if _, err := fmt.Fprintf(w, "data: %d\n\n", i); err != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
			select {
			case <-tick.C:
			case <-r.Context().Done():
				return
			}
		}
		dl.Extend()
		io.WriteString(w, "data: end\n\n")
	})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return s, reg
}

// slowBodies opens n connections to addr that each POST /upload with a declared 1 MB
// body and then send one byte per interval. It returns, for each connection, how long
// after its request headers the server closed it (EOF or reset seen by a read), once all
// n are closed, or an error when ctx ends first. Every goroutine it starts has returned
// by then.
func slowBodies(ctx context.Context, addr string, n int, interval time.Duration) ([]time.Duration, error) {
	held := make([]time.Duration, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return nil, err
		}
		wg.Add(2)
		closed := make(chan struct{})
		go func() { // the slow sender
			defer wg.Done()
			defer c.Close()
			start := time.Now()
			if _, err := io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n"); err != nil {
				errs <- err
				return
			}
			go func() { // the reader: the server's close ends it
				defer wg.Done()
				io.Copy(io.Discard, c)
				held[i] = time.Since(start)
				close(closed)
			}()
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for {
				select {
				case <-closed:
					return
				case <-ctx.Done():
					errs <- fmt.Errorf("connection %d still open: %w", i, ctx.Err())
					return
				case <-tick.C:
					c.Write([]byte{'a'}) // errors once the server closed: the reader says so
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return held, <-errs
}

// waitGoroutines waits until the process runs at most base goroutines; the bound is a
// guard against a leak, not a measurement.
func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines: %d, baseline %d\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

// The attack of issue 15, point 4: connections that send a request body one byte at a
// time were held as long as they kept sending. With a read timeout every one is closed
// by the server at that timeout, its goroutine returns, the timeout is counted, and
// normal requests and a stream longer than the write timeout still work.
func TestSlowBodyConnectionsAreClosed(t *testing.T) {
	const n = 50
	lim := ServerLimits{ReadTimeout: 300 * time.Millisecond, WriteTimeout: 500 * time.Millisecond}
	s, _ := limitedServer(t, lim)
	base := runtime.NumGoroutine()

	ctx, cancel := context.WithTimeout(context.Background(), 20*lim.ReadTimeout)
	defer cancel()
	held, err := slowBodies(ctx, s.Addr(), n, 50*time.Millisecond)
	if err != nil {
		t.Fatalf("the server did not close every slow-body connection: %v", err)
	}
	longest := time.Duration(0)
	for _, d := range held {
		longest = max(longest, d)
	}
	t.Logf("%d slow-body connections closed by the server, the last after %v (read_timeout %v)", n, longest, lim.ReadTimeout)
	waitGoroutines(t, base)
	if got := testutil.ToFloat64(s.m.timeouts.WithLabelValues(PhaseBody)); got != n {
		t.Errorf("mxp_http_timeouts_total{phase=body} = %v, want %d", got, n)
	}
	if got := testutil.ToFloat64(s.m.open); got != 0 {
		t.Errorf("mxp_http_connections = %v after every connection closed", got)
	}

	// A normal request and a body that arrives in time.
	if code, _ := get(t, "http://"+s.Addr()+"/livez"); code != 200 {
		t.Errorf("/livez: %d", code)
	}
	resp, err := http.Post("http://"+s.Addr()+"/upload", "text/plain", strings.NewReader(strings.Repeat("x", 4096)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "got 4096 bytes" {
		t.Errorf("upload: %d %q", resp.StatusCode, b)
	}

	// A stream three write timeouts long still ends with its last event.
	resp, err = http.Get("http://" + s.Addr() + "/sse")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events, last := 0, ""
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			events, last = events+1, d
		}
	}
	if last != "end" {
		t.Errorf("the stream was cut off after %d events (last %q): %v", events, last, sc.Err())
	}
	if got := testutil.ToFloat64(s.m.timeouts.WithLabelValues(PhaseWrite)); got != 0 {
		t.Errorf("write timeouts: %v", got)
	}
}

// MaxConns: a connection over the limit is accepted only when another closes, and the
// wait is counted.
func TestMaxConnsWaits(t *testing.T) {
	s, _ := limitedServer(t, ServerLimits{MaxConns: 2})
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		tr := &http.Transport{DisableKeepAlives: true}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get("http://" + s.Addr() + "/livez")
		if err != nil {
			done <- result{err: err}
			return
		}
		resp.Body.Close()
		done <- result{code: resp.StatusCode}
	}()
	// The third connection waits: the server counts it once its accept loop reaches it.
	for testutil.ToFloat64(s.m.waited) == 0 {
		select {
		case r := <-done:
			t.Fatalf("a third connection was served with max_conns 2 open: %+v", r)
		default:
			runtime.Gosched()
			time.Sleep(time.Millisecond)
		}
	}
	held[0].Close()
	r := <-done
	if r.err != nil || r.code != 200 {
		t.Fatalf("after a slot freed: %+v", r)
	}
	held[1].Close()
}

// A header block over MaxHeaderBytes is refused with 431.
func TestMaxHeaderBytes(t *testing.T) {
	s, _ := limitedServer(t, ServerLimits{MaxHeaderBytes: 1024})
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.Addr()+"/livez", nil)
	req.Header.Set("X-Big", strings.Repeat("b", 8192))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status %d, want 431", resp.StatusCode)
	}
}

func TestServerLimitsDefaults(t *testing.T) {
	got := ServerLimits{ReadTimeout: -1, MaxConns: 7}.WithDefaults()
	want := ServerLimits{ReadHeaderTimeout: DefaultReadHeaderTimeout, ReadTimeout: DefaultReadTimeout,
		WriteTimeout: DefaultWriteTimeout, IdleTimeout: DefaultIdleTimeout, MaxHeaderBytes: DefaultMaxHeaderBytes, MaxConns: 7,
		MaxConnsPerIP: DefaultMaxConnsPerIP}
	if got != want {
		t.Fatalf("%+v, want %+v", got, want)
	}
	if got := (ServerLimits{MaxConnsPerIP: -1}).WithDefaults().MaxConnsPerIP; got != -1 {
		t.Fatalf("a negative max_conns_per_ip (no cap) became %d", got)
	}
}

// BenchmarkSlowBodyConnections is the figure of issue 15, point 4: 300 connections each
// sending a body one byte per 100 ms against a 1 s read timeout; it reports when the
// server closed the last one (held_max_s) relative to the read timeout (ratio ≤ ~1).
func BenchmarkSlowBodyConnections(b *testing.B) {
	const n = 300
	lim := ServerLimits{ReadTimeout: time.Second}
	s, _ := limitedServer(b, lim)
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		held, err := slowBodies(ctx, s.Addr(), n, 100*time.Millisecond)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		longest := time.Duration(0)
		for _, d := range held {
			longest = max(longest, d)
		}
		b.ReportMetric(longest.Seconds(), "held_max_s")
		b.ReportMetric(longest.Seconds()/lim.ReadTimeout.Seconds(), "held/read_timeout")
	}
}
