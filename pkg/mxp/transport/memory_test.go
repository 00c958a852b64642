package transport

import (
	"context"
	"runtime"
	"testing"
	"time"
)

// BenchmarkIdleConnMemory reports the heap an idle connection pair keeps (dialled,
// accepted, one message exchanged, then quiet): the server's connection plus the client's
// connection, endpoint and socket buffers. An edge pays only the server's part per agent.
func BenchmarkIdleConnMemory(b *testing.B) {
	const conns = 200
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := Listen(ctx, "127.0.0.1:0", Config{PrivateKey: mustKey(b)})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		clients := make([]*Conn, 0, conns)
		servers := make([]*Conn, 0, conns)
		for range conns {
			c, err := Dial(ctx, l.Addr().String(), l.PublicKey(), Config{PrivateKey: mustKey(b)})
			if err != nil {
				b.Fatal(err)
			}
			if err := c.Send(ctx, []byte("hello")); err != nil {
				b.Fatal(err)
			}
			s, err := l.Accept(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := s.Receive(ctx); err != nil {
				b.Fatal(err)
			}
			clients, servers = append(clients, c), append(servers, s)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/conns, "heap_B/pair")
		for i := range clients {
			clients[i].Close()
			servers[i].Close()
		}
	}
}

// idleServerMemory dials n connections to one listener, exchanges one message on each,
// then drops the clients without telling the server (as agents that went quiet) and
// returns the heap the server keeps per connection (HeapAlloc after GC).
func idleServerMemory(tb testing.TB, n int) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := Listen(ctx, "127.0.0.1:0", Config{PrivateKey: mustKey(tb), IdleTimeout: time.Hour, KeepaliveInterval: time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	servers := make([]*Conn, 0, n)
	for range n {
		c, err := Dial(ctx, l.Addr().String(), l.PublicKey(), Config{PrivateKey: mustKey(tb), IdleTimeout: time.Hour, KeepaliveInterval: time.Hour})
		if err != nil {
			tb.Fatal(err)
		}
		if err := c.Send(ctx, []byte("hello")); err != nil {
			tb.Fatal(err)
		}
		s, err := l.Accept(ctx)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := s.Receive(ctx); err != nil {
			tb.Fatal(err)
		}
		c.closeNow(&CloseError{Reason: "gone quiet"}, false) // the server is not told
		servers = append(servers, s)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	for _, s := range servers {
		s.Close()
	}
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
}

// BenchmarkIdleServerConnMemory reports what an edge pays per idle agent: the heap of one
// accepted, authenticated, quiet connection (1,000 of them; goal ≤ 32 KiB each).
func BenchmarkIdleServerConnMemory(b *testing.B) {
	for range b.N {
		b.ReportMetric(idleServerMemory(b, 1000), "heap_B/conn")
	}
}

// TestIdleServerConnMemory keeps the idle connection's footprint under 32 KiB (issue 15).
func TestIdleServerConnMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("dials 1,000 connections")
	}
	per := idleServerMemory(t, 1000)
	t.Logf("%.0f bytes per idle server connection", per)
	if per > 32<<10 {
		t.Fatalf("%.0f bytes per idle server connection, want ≤ 32 KiB", per)
	}
}
