package edge

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/nats-io/nats.go"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// benchMesh is a bus with a registry, two edges (plaintext and secure listeners on each),
// an echo agent B on edge 2 and callers on edge 1, plus a plain NATS echo responder for
// the baseline.
type benchMesh struct {
	callers []*mxp.Conn
	bID     mxp.AgentID
	nc      *nats.Conn // baseline requester
}

const benchPayload = 256

func newBenchMesh(b *testing.B, secure bool, callers int) *benchMesh {
	return newBenchMeshWith(b, secure, callers, func(c *mxp.Conn) { serveEcho(c, nil) })
}

// newBenchMeshWith is newBenchMesh with agent B served by serve.
func newBenchMeshWith(b *testing.B, secure bool, callers int, serve func(*mxp.Conn)) *benchMesh {
	bs := testBus(b)
	startFakeRegistry(b, bs)
	var e1, e2 *testEdge
	dialer := func(te *testEdge) *mxp.Conn { return dial(b, te.addr) }
	if secure {
		te1, key1 := startSecureEdge(b, bs)
		te2, key2 := startSecureEdge(b, bs)
		e1, e2 = te1, te2
		dialer = func(te *testEdge) *mxp.Conn {
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
	_, err := m.callers[i%len(m.callers)].CallAgent(ctx, m.bID, data, 10*time.Second)
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
	var firstErr atomic.Value
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
				firstErr.CompareAndSwap(nil, err)
				return
			}
			mu.Lock()
			_ = h.RecordValue(max(lat.Microseconds(), 1))
			mu.Unlock()
		})
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d of %d calls failed, the first with: %v", f, n, firstErr.Load())
	}
	return h, time.Since(start)
}

// BenchmarkCallLatencyAt5k: round trip of a 256-byte Call, client → edge 1 → bus → edge 2
// → echo agent → back, at 5,000 calls/s; p50 and p99 beside a NATS request/reply baseline
// at the same rate in the same process. The calls run in benchWindows windows, each the
// baseline then the mesh; every figure is the median of the windows' (p50_x_baseline the
// median of each window's own ratio).
func BenchmarkCallLatencyAt5k(b *testing.B) {
	for _, tr := range []string{"compat", "secure"} {
		b.Run(tr, func(b *testing.B) {
			m := newBenchMesh(b, tr == "secure", 4)
			per := max(b.N, 2000*benchWindows) / benchWindows
			var p50s, p99s, natsP50s, natsP99s, ratios []float64
			b.ResetTimer()
			for range benchWindows {
				b.StopTimer()
				settle()
				base, _ := atRate(b, per, 5000, m.natsCall)
				settle()
				b.StartTimer()
				h, _ := atRate(b, per, 5000, m.meshCall)
				p50, natsP50 := float64(h.ValueAtQuantile(50)), float64(base.ValueAtQuantile(50))
				p50s, natsP50s = append(p50s, p50), append(natsP50s, natsP50)
				p99s, natsP99s = append(p99s, float64(h.ValueAtQuantile(99))), append(natsP99s, float64(base.ValueAtQuantile(99)))
				ratios = append(ratios, p50/max(natsP50, 1))
			}
			b.StopTimer()
			b.ReportMetric(median(p50s), "p50-µs")
			b.ReportMetric(median(p99s), "p99-µs")
			b.ReportMetric(median(natsP50s), "nats-p50-µs")
			b.ReportMetric(median(natsP99s), "nats-p99-µs")
			b.ReportMetric(median(ratios), "p50_x_baseline")
		})
	}
}

// benchWindows is how many windows a comparison benchmark splits its calls into. The
// machine is shared and noisy: each window runs the baseline and the mesh back to back, so
// both see the same load, and the median of the windows' figures is reported, which one
// window disturbed by another process's burst cannot move.
const benchWindows = 5

// median returns the median of v (the mean of the middle two for an even count); v is
// sorted in place.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// settle starts a measurement window from a collected heap, so that no window inherits
// the previous one's garbage (a collection landing in one window and not another is most
// of the spread between windows).
func settle() { runtime.GC() }

// closedLoop runs n calls with 64 in flight (each of 64 goroutines calls, then calls
// again) and returns the rate and the latency histogram in microseconds.
func closedLoop(b *testing.B, n int, call func(int, []byte) error) (float64, *hdrhistogram.Histogram) {
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

// BenchmarkCallThroughput: calls/s with 64 calls in flight over 4 connections, beside NATS
// request/reply with 64 in flight. The calls run in benchWindows windows, each the NATS
// baseline then the mesh; calls/s, nats-calls/s and x_baseline are the windows' medians
// (x_baseline the median of each window's own ratio), p99 the mesh's over all windows.
func BenchmarkCallThroughput(b *testing.B) {
	for _, tr := range []string{"compat", "secure"} {
		b.Run(tr, func(b *testing.B) {
			m := newBenchMesh(b, tr == "secure", 4)
			per := max(b.N, 5000*benchWindows) / benchWindows
			all := hdrhistogram.New(1, 60_000_000, 3)
			var rates, baseRates, ratios []float64
			b.ResetTimer()
			for range benchWindows {
				b.StopTimer()
				settle()
				baseRate, _ := closedLoop(b, per, m.natsCall)
				settle()
				b.StartTimer()
				rate, h := closedLoop(b, per, m.meshCall)
				all.Merge(h)
				rates, baseRates, ratios = append(rates, rate), append(baseRates, baseRate), append(ratios, rate/baseRate)
			}
			b.StopTimer()
			b.ReportMetric(median(rates), "calls/s")
			b.ReportMetric(float64(all.ValueAtQuantile(99)), "p99-µs")
			b.ReportMetric(median(baseRates), "nats-calls/s")
			b.ReportMetric(median(ratios), "x_baseline")
		})
	}
}

// maxRateWindows and maxRateWindow: each step of BenchmarkMaxRateP99Under5ms offers its
// rate for maxRateWindows windows of maxRateWindow and judges the step by their medians.
const (
	maxRateWindows = 3
	maxRateWindow  = 500 * time.Millisecond
)

// BenchmarkMaxRateP99Under5ms steps the offered rate up and reports the highest rate the
// mesh sustained (≥ 97% delivered) with p99 under 5 ms. A step passes when the median over
// its windows of the p99 is under 5 ms and the median delivered share is ≥ 97%: one window
// hit by another process's burst (the machine is shared) neither fails a step nor passes
// one. After the coarse steps, three bisections between the last rate that passed and the
// first that failed place the figure within 1/8 of that gap, so that two runs in a row
// agree to well within the coarse steps (which double at the low end).
func BenchmarkMaxRateP99Under5ms(b *testing.B) {
	m := newBenchMesh(b, false, 8)
	passes := func(rate float64) bool {
		n := max(int(rate*maxRateWindow.Seconds()), 1)
		var p50s, p99s, shares []float64
		for range maxRateWindows {
			settle()
			h, took := atRate(b, n, rate, m.meshCall)
			p50s = append(p50s, float64(h.ValueAtQuantile(50)))
			p99s = append(p99s, float64(h.ValueAtQuantile(99)))
			shares = append(shares, float64(n)/took.Seconds()/rate)
		}
		p50, p99, share := median(p50s), median(p99s), median(shares)
		b.Logf("offered %6.0f/s: achieved %6.0f/s, p50 %5.0fµs p99 %6.0fµs (medians of %d windows)", rate, share*rate, p50, p99, maxRateWindows)
		return p99 < 5000 && share >= 0.97
	}
	best, failed := 0.0, 0.0
	for _, rate := range []float64{2000, 5000, 10000, 15000, 20000, 30000, 40000, 60000} {
		if !passes(rate) {
			failed = rate
			break
		}
		best = rate
	}
	for range 3 {
		if failed == 0 {
			break
		}
		mid := (best + failed) / 2
		if passes(mid) {
			best = mid
		} else {
			failed = mid
		}
	}
	b.ReportMetric(best, "max-calls/s")
}
