package edge

import (
	"context"
	"encoding/binary"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// serveStampedEcho answers each Call with its payload, bytes 8..16 overwritten with the
// time (unix nanoseconds) the agent answered: with the caller's send time in bytes 0..8,
// the caller can split the round trip into its outbound and return legs (one process,
// one clock).
func serveStampedEcho(c *mxp.Conn) {
	go func() {
		for f := range c.Inbound() {
			if f.Type != mxp.TypeCall {
				continue
			}
			cp, err := mxp.DecodeCall(f.Payload)
			if err != nil || len(cp.Data) < 16 {
				continue
			}
			data := append([]byte(nil), cp.Data...)
			binary.LittleEndian.PutUint64(data[8:], uint64(time.Now().UnixNano()))
			_ = c.Respond(context.Background(), f, data)
		}
	}()
}

// udpEchoBaseline is a bare loopback UDP echo: a server socket that sends every datagram
// back, and a pool of client sockets, one per call in flight.
type udpEchoBaseline struct {
	srv   *net.UDPConn
	addr  *net.UDPAddr
	conns sync.Pool
}

func newUDPEchoBaseline(b *testing.B) *udpEchoBaseline {
	srv, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Close() })
	// The same socket buffers as the edge's and the client's sockets: with the kernel's
	// default, a few tens of milliseconds without the CPU (a shared machine) overflow it,
	// and a lost datagram fails its call after the 10 s deadline.
	_ = srv.SetReadBuffer(8 << 20)
	_ = srv.SetWriteBuffer(8 << 20)
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, from, err := srv.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			_, _ = srv.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	u := &udpEchoBaseline{srv: srv, addr: srv.LocalAddr().(*net.UDPAddr)}
	var mu sync.Mutex
	var all []*net.UDPConn
	u.conns.New = func() any {
		c, err := net.DialUDP("udp", nil, u.addr)
		if err != nil {
			return err
		}
		_ = c.SetReadBuffer(8 << 20)
		mu.Lock()
		all = append(all, c)
		mu.Unlock()
		return c
	}
	b.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range all {
			_ = c.Close()
		}
	})
	return u
}

func (u *udpEchoBaseline) call(_ int, data []byte) error {
	v := u.conns.Get()
	c, ok := v.(*net.UDPConn)
	if !ok {
		return v.(error)
	}
	defer u.conns.Put(c)
	if _, err := c.Write(data); err != nil {
		return err
	}
	buf := make([]byte, len(data)+1)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := c.Read(buf)
	return err
}

// BenchmarkCallLegs splits the 256-byte Call round trip at 5,000 calls/s into where the
// time goes: the outbound leg (caller → edge 1 → bus → edge 2 → agent, up to the agent's
// answer) and the return leg (agent → edge 2 → bus → edge 1 → caller), beside, in the same
// run, a NATS request/reply (the bus's share: one bus round trip) and a bare loopback UDP
// echo (the network's share; the mesh path has two UDP round trips, caller ↔ edge 1 and
// edge 2 ↔ agent).
//
// The calls run in benchWindows windows, each the NATS baseline, the UDP echo, then the
// mesh, so that all three see the same load on a shared machine; every figure is the
// median of the windows' p50s. x_legs is the median of each window's mesh p50 over its
// UDP echo p50 plus two NATS p50s (a Call crosses the bus twice): the goal is ≤ 1.5.
func BenchmarkCallLegs(b *testing.B) {
	for _, tr := range []string{"compat", "secure"} {
		b.Run(tr, func(b *testing.B) {
			m := newBenchMeshWith(b, tr == "secure", 4, serveStampedEcho)
			udp := newUDPEchoBaseline(b)
			per := max(b.N, 2000*benchWindows) / benchWindows
			var p50s, outs, backs, natss, udps, ratios []float64
			b.ResetTimer()
			for range benchWindows {
				b.StopTimer()
				settle()
				natsH, _ := atRate(b, per, 5000, m.natsCall)
				udpH, _ := atRate(b, per, 5000, udp.call)
				settle()
				b.StartTimer()
				out := hdrhistogram.New(1, 60_000_000, 3)
				back := hdrhistogram.New(1, 60_000_000, 3)
				var mu sync.Mutex
				total, _ := atRate(b, per, 5000, func(i int, _ []byte) error {
					data := make([]byte, benchPayload)
					sent := time.Now()
					binary.LittleEndian.PutUint64(data, uint64(sent.UnixNano()))
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					resp, err := m.callers[i%len(m.callers)].CallAgent(ctx, m.bID, data, 10*time.Second)
					got := time.Now().UnixNano()
					if err != nil {
						return err
					}
					answered := int64(binary.LittleEndian.Uint64(resp[8:]))
					mu.Lock()
					_ = out.RecordValue(max((answered-sent.UnixNano())/1000, 1))
					_ = back.RecordValue(max((got-answered)/1000, 1))
					mu.Unlock()
					return nil
				})
				p50 := float64(total.ValueAtQuantile(50))
				natsP50, udpP50 := float64(natsH.ValueAtQuantile(50)), float64(udpH.ValueAtQuantile(50))
				p50s, natss, udps = append(p50s, p50), append(natss, natsP50), append(udps, udpP50)
				outs, backs = append(outs, float64(out.ValueAtQuantile(50))), append(backs, float64(back.ValueAtQuantile(50)))
				ratios = append(ratios, p50/max(udpP50+2*natsP50, 1))
			}
			b.StopTimer()
			b.ReportMetric(median(p50s), "p50-µs")
			b.ReportMetric(median(outs), "out-p50-µs")
			b.ReportMetric(median(backs), "back-p50-µs")
			b.ReportMetric(median(natss), "nats-p50-µs")
			b.ReportMetric(median(udps), "udp-echo-p50-µs")
			b.ReportMetric(median(ratios), "x_legs")
		})
	}
}
