package integration

import (
	"context"
	"testing"
	"time"

	"github.com/mxp-mesh/mesh/examples/internal/meshtest"
)

// BenchmarkAgentCall measures one Call between two SDK agents through the whole mesh in
// process (agent → secure transport → edge → bus → edge → agent handler and back), 256
// bytes each way, with calls issued from 8×GOMAXPROCS goroutines; calls/s is the
// throughput the two agents sustain on one connection each.
func BenchmarkAgentCall(b *testing.B) {
	m := meshtest.New(b, nil)
	server := newAgent(b, m, "echo", "bench.echo")
	server.HandleCall(func(ctx context.Context, p []byte) ([]byte, error) { return p, nil })
	client := newAgent(b, m, "client")
	meshtest.Run(b, server)
	meshtest.Run(b, client)
	payload := make([]byte, 256)
	ctx := context.Background()

	b.Run("mesh", func(b *testing.B) {
		b.SetParallelism(8)
		b.ReportAllocs()
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				out, err := client.Call(ctx, server.ID(), payload)
				if err != nil || len(out) != len(payload) {
					b.Errorf("call: %d bytes, %v", len(out), err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
	})
}
