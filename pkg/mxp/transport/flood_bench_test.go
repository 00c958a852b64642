package transport

import (
	"context"
	"net"
	"slices"
	"sync"
	"testing"
	"time"
)

// flood sends the prepared initiations round and round at about pps packets per second
// until stop is closed (after the first round they are replays: each still costs a
// listener without per-source limits its Diffie-Hellman work before the replay check).
func (f *cookieFlooder) flood(pps int, stop <-chan struct{}) (sent int) {
	const tick = 5 * time.Millisecond
	per := max(pps*int(tick)/int(time.Second), 1)
	next := time.Now()
	for i := 0; ; {
		select {
		case <-stop:
			return sent
		default:
		}
		for range per {
			f.sock.WriteToUDPAddrPort(f.pkts[i], f.server)
			i = (i + 1) % len(f.pkts)
			sent++
		}
		next = next.Add(tick)
		time.Sleep(time.Until(next))
	}
}

// BenchmarkDialUnderFlood is the figure of issue 15 point 6: the latency of a legitimate
// dial from 127.0.0.2 while an attacker on 127.0.0.1 that answers cookies floods the
// listener (default configuration) with valid initiations at 20,000 per second. The same
// run first dials b.N times without the flood (base-*). Every dial must succeed. Loopback
// only; the flood stops with the benchmark.
func BenchmarkDialUnderFlood(b *testing.B) {
	const pps = 20_000
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	l, err := Listen(ctx, "127.0.0.1:0", Config{PrivateKey: mustKey(b)})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	// Connections are accepted (a full accept queue would refuse the legitimate client)
	// and left to end with the client's close, so no CLOSE races the client's dial.
	go func() {
		for {
			if _, err := l.Accept(ctx); err != nil {
				return
			}
		}
	}()
	legit := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)}
	ckey := mustKey(b)
	dials := func(n int) []time.Duration {
		var lat []time.Duration
		for range n {
			start := time.Now()
			c, err := dialFrom(ctx, legit, l.Addr().String(), l.PublicKey(), Config{PrivateKey: ckey})
			if err != nil {
				b.Fatalf("legitimate dial: %v", err)
			}
			lat = append(lat, time.Since(start))
			c.Close()
		}
		return lat
	}
	b.StopTimer()
	base := dials(b.N)
	f := newCookieFlooder(b, l, net.IPv4(127, 0, 0, 1), 4096)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var sent int
	floodStart := time.Now()
	wg.Go(func() { sent = f.flood(pps, stop) })
	b.StartTimer()
	under := dials(b.N)
	b.StopTimer()
	close(stop)
	wg.Wait()
	elapsed := time.Since(floodStart)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(quantile(base, 0.5)), "base-p50-ms")
	b.ReportMetric(ms(quantile(base, 0.99)), "base-p99-ms")
	b.ReportMetric(ms(quantile(under, 0.5)), "flood-p50-ms")
	b.ReportMetric(ms(quantile(under, 0.99)), "flood-p99-ms")
	b.ReportMetric(float64(sent)/elapsed.Seconds(), "flood-pps")
	st := l.Stats()
	b.ReportMetric(float64(st.Connections), "conns-after")
}

// quantile is the q-quantile (nearest rank) of ds.
func quantile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(int(q*float64(len(s))), len(s)-1)]
}
