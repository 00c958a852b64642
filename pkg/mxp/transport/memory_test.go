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
