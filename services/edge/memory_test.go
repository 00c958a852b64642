package edge

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxp-mesh/mesh/pkg/mxp/transport"
)

// idleClientsEnv tells TestIdleClientsHelper (run as a child process) where to dial: "ADDR
// EDGEKEY N".
const idleClientsEnv = "MXP_EDGE_TEST_IDLE_CLIENTS"

// idleConnCost is what the edge process keeps per idle secure connection.
type idleConnCost struct {
	heap, stack, goroutines float64 // per connection: HeapAlloc, StackInuse, goroutines
}

// measureIdleSecureConns starts a secure edge, has a child process open n authenticated
// secure connections to it and keep them idle, and returns the growth of the edge
// process per connection: HeapAlloc and StackInuse after runtime.GC, and goroutines.
// The clients live in the child process, so none of their memory is counted here: the
// parent holds only the edge (and the bus it was started with, measured before).
func measureIdleSecureConns(tb testing.TB, n int) idleConnCost {
	bs := testBus(tb)
	keyFile := filepath.Join(tb.TempDir(), "edge.key")
	e := startEdgeCfg(tb, bs, Config{Addr: "127.0.0.1:0", KeyFile: keyFile,
		// One source dials them all, faster than a real fleet would: no handshake bucket.
		Secure: SecureLimits{HandshakeRatePerSource: -1, HandshakeRatePerKey: -1}})
	addr := e.Addrs()["secure"]

	var before, after runtime.MemStats
	g0 := runtime.NumGoroutine()
	runtime.GC()
	runtime.ReadMemStats(&before)

	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleClientsHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %d", idleClientsEnv, addr, e.PublicKey(), n))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	var stopOnce sync.Once
	stop := func() { stopOnce.Do(func() { stdin.Close(); _ = cmd.Wait() }) } // EOF: the child closes its conns
	tb.Cleanup(stop)
	sc := bufio.NewScanner(out)
	ready := false
	for sc.Scan() {
		if sc.Text() == "ready" {
			ready = true
			break
		}
	}
	if !ready {
		tb.Fatalf("the client process did not open its %d connections", n)
	}
	// Every client has sent its first data packet (Dial's confirmation); the edge opens a
	// session for each as its accept loop reaches it.
	waitFor(tb, "the edge's sessions", func() bool {
		e.mu.RLock()
		defer e.mu.RUnlock()
		return len(e.sessions) == n
	})
	g1 := runtime.NumGoroutine()
	runtime.GC()
	runtime.ReadMemStats(&after)
	stop()
	waitFor(tb, "the sessions closed", func() bool {
		e.mu.RLock()
		defer e.mu.RUnlock()
		return len(e.sessions) == 0
	})
	return idleConnCost{
		heap:       float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n),
		stack:      float64(int64(after.StackInuse)-int64(before.StackInuse)) / float64(n),
		goroutines: float64(g1-g0) / float64(n),
	}
}

// TestIdleClientsHelper is the client process of measureIdleSecureConns: it dials n secure
// connections (each confirmed by its first data packet), prints "ready", and holds them
// until its stdin ends.
func TestIdleClientsHelper(t *testing.T) {
	spec := os.Getenv(idleClientsEnv)
	if spec == "" {
		t.Skip("the client process of TestIdleSecureConnMemory")
	}
	f := strings.Fields(spec)
	edgeKey, err := transport.ParsePublicKey(f[1])
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(f[2])
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	conns := make([]*transport.Conn, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	for range 8 { // under the edge's 64 unconfirmed connections per source
		wg.Go(func() {
			for i := range next {
				key, err := transport.GeneratePrivateKey()
				if err != nil {
					errs <- err
					return
				}
				c, err := transport.Dial(ctx, f[0], edgeKey, transport.Config{PrivateKey: key})
				if err != nil {
					errs <- err
					return
				}
				conns[i] = c
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	fmt.Println("ready")
	_, _ = bufio.NewReader(os.Stdin).ReadString(0) // until EOF
	for _, c := range conns {
		c.Close()
	}
}

// BenchmarkIdleSecureConnMemory reports what the edge process keeps per idle authenticated
// secure connection (1,000 of them, dialled from a child process): heap, goroutine stacks,
// their sum (B/conn; goal ≤ 32 KiB, issue 15) and goroutines.
func BenchmarkIdleSecureConnMemory(b *testing.B) {
	for range b.N {
		c := measureIdleSecureConns(b, 1000)
		b.ReportMetric(c.heap+c.stack, "B/conn")
		b.ReportMetric(c.heap, "heap_B/conn")
		b.ReportMetric(c.stack, "stack_B/conn")
		b.ReportMetric(c.goroutines, "goroutines/conn")
	}
}

// TestIdleSecureConnMemory bounds what the edge keeps per idle authenticated secure
// connection: heap + goroutine stacks ≤ 32 KiB (issue 15), and one goroutine (the one
// that reads its messages; its datagrams are handled on the listener's read loop, not on
// a goroutine of their own).
func TestIdleSecureConnMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("dials 1,000 connections")
	}
	c := measureIdleSecureConns(t, 1000)
	t.Logf("per idle secure connection: heap %.0f B, stacks %.0f B, goroutines %.2f", c.heap, c.stack, c.goroutines)
	if c.heap+c.stack > 32<<10 {
		t.Errorf("%.0f bytes per idle secure connection, want ≤ 32 KiB", c.heap+c.stack)
	}
	if c.goroutines > 1.5 {
		t.Errorf("%.2f goroutines per idle secure connection, want 1", c.goroutines)
	}
}
