package edge

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/nats-io/nats.go"

	"github.com/mxp-mesh/mesh/pkg/mxp"
	"github.com/mxp-mesh/mesh/services/edge/client"
)

// benchMesh is a bus with a registry, two edges (plaintext and secure listeners on each),
// an echo agent B on edge 2 and callers on edge 1, plus a plain NATS echo responder for
// the baseline.
type benchMesh struct {
	callers []*client.Client
	bID     mxp.AgentID
	nc      *nats.Conn // baseline requester
}

const benchPayload = 256

func newBenchMesh(b *testing.B, secure bool, callers int) *benchMesh {
	return newBenchMeshWith(b, secure, callers, func(c *client.Client) { serveEcho(c, nil) })
}

// newBenchMeshWith is newBenchMesh with agent B served by serve.
func newBenchMeshWith(b *testing.B, secure bool, callers int, serve func(*client.Client)) *benchMesh {
	bs := testBus(b)
	startFakeRegistry(b, bs)
	var e1, e2 *testEdge
	dialer := func(te *testEdge) *client.Client { return dial(b, te.addr) }
	if secure {
		te1, key1 := startSecureEdge(b, bs)
		te2, key2 := startSecureEdge(b, bs)
		e1, e2 = te1, te2
		dialer = func(te *testEdge) *client.Client {
			if te == e1 {
				return dialSecure(b, te.addr, key1)
			}
			return dialSecure(b, te.addr, key2)
		}
	} else {
		e1, e2 = startEdge(b, bs, nil), startEdge(b, bs, nil)
	}
	m := &benchMesh{}
	bc := dialer(e2)
	m.bID = registerAgent(b, bc, "bench-echo", "echo")
	serve(bc)
	for range callers {
		m.callers = append(m.callers, dialer(e1))
	}
	// Baseline: NATS request/reply to a responder on another connection of the same bus.
	rc, err := bs.NewConn("baseline-responder")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(rc.Close)
	if _, err := rc.Subscribe("bench.echo", func(msg *nats.Msg) { _ = msg.Respond(msg.Data) }); err != nil {
		b.Fatal(err)
	}
	rc.Flush()
	if m.nc, err = bs.NewConn("baseline-requester"); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(m.nc.Close)
	return m
}

func (m *benchMesh) meshCall(i int, data []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := m.callers[i%len(m.callers)].Call(ctx, m.bID, data, 10*time.Second)
	return err
}

func (m *benchMesh) natsCall(_ int, data []byte) error {
	_, err := m.nc.Request("bench.echo", data, 10*time.Second)
	return err
}

// atRate issues n calls at rate per second (open loop: each call in its own goroutine, so
// a slow answer never delays the next send) and returns the latency histogram in
// microseconds, counted from each call's send (not from when it was due, so the timer
// granularity of this generator is not charged to the mesh).
func atRate(b *testing.B, n int, rate float64, call func(i int, data []byte) error) (*hdrhistogram.Histogram, time.Duration) {
	h := hdrhistogram.New(1, 60_000_000, 3)
	var mu sync.Mutex
	var wg sync.WaitGroup
	var failed atomic.Int64
	data := make([]byte, benchPayload)
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	for i := range n {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		wg.Go(func() {
			t0 := time.Now()
			err := call(i, data)
			lat := time.Since(t0)
			if err != nil {
				failed.Add(1)
				return
			}
			mu.Lock()
			_ = h.RecordValue(max(lat.Microseconds(), 1))
			mu.Unlock()
		})
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d of %d calls failed", f, n)
	}
	return h, time.Since(start)
}

// BenchmarkCallLatencyAt5k: round trip of a 256-byte Call, client → edge 1 → bus → edge 2
// → echo agent → back, at 5,000 calls/s; p50 and p99 beside a NATS request/reply baseline
// at the same rate in the same process.
func BenchmarkCallLatencyAt5k(b *testing.B) {
	for _, tr := range []string{"compat", "secure"} {
		b.Run(tr, func(b *testing.B) {
			m := newBenchMesh(b, tr == "secure", 4)
			n := max(b.N, 2000)
			base, _ := atRate(b, n, 5000, m.natsCall)
			b.ResetTimer()
			h, _ := atRate(b, n, 5000, m.meshCall)
			b.StopTimer()
			b.ReportMetric(float64(h.ValueAtQuantile(50)), "p50-µs")
			b.ReportMetric(float64(h.ValueAtQuantile(99)), "p99-µs")
			b.ReportMetric(float64(base.ValueAtQuantile(50)), "nats-p50-µs")
			b.ReportMetric(float64(base.ValueAtQuantile(99)), "nats-p99-µs")
			b.ReportMetric(float64(h.ValueAtQuantile(50))/float64(max(base.ValueAtQuantile(50), 1)), "p50_x_baseline")
		})
	}
}

// BenchmarkCallThroughput: calls/s with 64 calls in flight over 4 connections, beside NATS
// request/reply with 64 in flight.
func BenchmarkCallThroughput(b *testing.B) {
	for _, tr := range []string{"compat", "secure"} {
		b.Run(tr, func(b *testing.B) {
			m := newBenchMesh(b, tr == "secure", 4)
			closed := func(n int, call func(int, []byte) error) (float64, *hdrhistogram.Histogram) {
				h := hdrhistogram.New(1, 60_000_000, 3)
				var mu sync.Mutex
				var next atomic.Int64
				var wg sync.WaitGroup
				data := make([]byte, benchPayload)
				start := time.Now()
				for range 64 {
					wg.Go(func() {
						for {
							i := int(next.Add(1))
							if i > n {
								return
							}
							t0 := time.Now()
							if err := call(i, data); err != nil {
								b.Error(err)
								return
							}
							mu.Lock()
							_ = h.RecordValue(max(time.Since(t0).Microseconds(), 1))
							mu.Unlock()
						}
					})
				}
				wg.Wait()
				return float64(n) / time.Since(start).Seconds(), h
			}
			n := max(b.N, 5000)
			baseRate, _ := closed(n, m.natsCall)
			b.ResetTimer()
			rate, h := closed(n, m.meshCall)
			b.StopTimer()
			b.ReportMetric(rate, "calls/s")
			b.ReportMetric(float64(h.ValueAtQuantile(99)), "p99-µs")
			b.ReportMetric(baseRate, "nats-calls/s")
			b.ReportMetric(rate/baseRate, "x_baseline")
		})
	}
}

// BenchmarkMaxRateP99Under5ms steps the offered rate up and reports the highest rate the
// mesh sustained (≥ 97% delivered) with p99 under 5 ms, for 1 s at each step.
func BenchmarkMaxRateP99Under5ms(b *testing.B) {
	m := newBenchMesh(b, false, 8)
	best := 0.0
	for _, rate := range []float64{2000, 5000, 10000, 15000, 20000, 30000, 40000, 60000} {
		n := int(rate) // one second
		h, took := atRate(b, n, rate, m.meshCall)
		achieved := float64(n) / took.Seconds()
		b.Logf("offered %6.0f/s: achieved %6.0f/s, p50 %5dµs p99 %6dµs", rate, achieved, h.ValueAtQuantile(50), h.ValueAtQuantile(99))
		if h.ValueAtQuantile(99) >= 5000 || achieved < 0.97*rate {
			break
		}
		best = rate
	}
	b.ReportMetric(best, "max-calls/s")
}
