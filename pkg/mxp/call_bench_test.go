package mxp

import (
	"context"
	"testing"
	"time"

	"github.com/mxp-mesh/mesh/pkg/mxp/transport/netem"
)

// BenchmarkCallRTT256 measures Conn.Call of a 256-byte Call against a listener that
// answers with Echo on its read loop (as `mxp echo-server`), and reports it as a ratio to
// a plain UDP echo of the same size measured in the same run, interleaved in blocks so
// that both see the same machine load. "sequential" is `mxp ping`'s loop (one call in
// flight: the caller reads its own answer, no goroutine hand-off); "parallel_8" keeps 8
// calls in flight on one Conn.
func BenchmarkCallRTT256(b *testing.B) {
	ctx := context.Background()
	srvKey, _ := GeneratePrivateKey()
	l, err := Listen(ctx, "127.0.0.1:0", Options{PrivateKey: srvKey, Serve: Echo})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	cliKey, _ := GeneratePrivateKey()
	c, err := Dial(ctx, l.Addr().String(), Options{PrivateKey: cliKey, ServerKey: l.PublicKey()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	srv, err := netem.ListenUDPEcho("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	udp, err := netem.DialUDPPinger(srv.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { udp.Close() })
	payload := make([]byte, 256)
	call := func() {
		if _, err := c.Call(ctx, &Frame{Type: TypeCall, Payload: payload}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("sequential", func(b *testing.B) {
		const block = 200
		var tCall, tUDP time.Duration
		b.ResetTimer()
		for done := 0; done < b.N; done += block {
			n := min(block, b.N-done)
			start := time.Now()
			for range n {
				call()
			}
			tCall += time.Since(start)
			b.StopTimer()
			d, err := udp.RoundTrips(n, payload)
			if err != nil {
				b.Fatal(err)
			}
			tUDP += d
			b.StartTimer()
		}
		b.ReportMetric(float64(tCall)/float64(tUDP), "x_udp")
	})
	b.Run("parallel_8", func(b *testing.B) {
		b.SetParallelism(4) // 2 cores × 4
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				call()
			}
		})
	})
}
