package edge

import (
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mxp-mesh/mesh/pkg/common/config"
	"github.com/mxp-mesh/mesh/pkg/mxp"
	"github.com/mxp-mesh/mesh/pkg/mxp/transport"
)

// udpTap sits between a client and the edge: it forwards both ways and keeps the last
// data packet the client sent, so that a test can send a tampered copy as the client.
type udpTap struct {
	front, back *net.UDPConn
	edge        netip.AddrPort
	mu          sync.Mutex
	lastData    []byte
}

func newUDPTap(t *testing.T, edgeAddr string) *udpTap {
	t.Helper()
	front, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	back, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &udpTap{front: front, back: back, edge: netip.MustParseAddrPort(edgeAddr)}
	client := make(chan netip.AddrPort, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 2048)
		first := true
		for {
			n, src, err := front.ReadFromUDPAddrPort(buf)
			if err != nil {
				close(client)
				return
			}
			if first {
				client <- src
				first = false
			}
			if buf[0] == transport.PacketData && n > transport.DataOverhead {
				p.mu.Lock()
				p.lastData = append(p.lastData[:0], buf[:n]...)
				p.mu.Unlock()
			}
			back.WriteToUDPAddrPort(buf[:n], p.edge)
		}
	})
	wg.Go(func() {
		to, ok := <-client
		if !ok {
			return
		}
		buf := make([]byte, 2048)
		for {
			n, _, err := back.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			front.WriteToUDPAddrPort(buf[:n], to)
		}
	})
	t.Cleanup(func() {
		front.Close()
		back.Close()
		wg.Wait()
	})
	return p
}

// sendTampered sends the client's last data packet with a counter not yet seen (so that
// the anti-replay window lets it through to authentication) and one ciphertext bit
// flipped, from the address the edge knows the client by.
func (p *udpTap) sendTampered(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	b := append([]byte(nil), p.lastData...)
	p.mu.Unlock()
	if len(b) == 0 {
		t.Fatal("no data packet seen")
	}
	b[8+2]++ // the counter (bytes 8..15, little-endian), 65,536 ahead
	b[transport.DataHeaderSize+1] ^= 1
	p.back.WriteToUDPAddrPort(b, p.edge)
}

// TestSecureCountersSayWhatHappened is the regression test of issue 15 point 7: a tampered
// data packet is counted as mxp_edge_packets_dropped_total{reason="data_auth"}, not as a
// failed handshake (the old edge counted it as handshake_failures_total{reason="auth"}),
// and packets for no session and malformed packets are exported as their own series.
func TestSecureCountersSayWhatHappened(t *testing.T) {
	bs := testBus(t)
	startFakeRegistry(t, bs)
	e, key := startSecureEdge(t, bs)
	tap := newUDPTap(t, e.addr)
	ck, err := transport.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	c, err := mxp.Dial(ctxT(t), tap.front.LocalAddr().String(), mxp.Options{PrivateKey: ck, ServerKey: key})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	registerAgent(t, c, "alice")
	series := func(vec string, reason string) float64 {
		switch vec {
		case "handshake":
			return testutil.ToFloat64(e.m.handshakeFailures.WithLabelValues("secure", reason))
		default:
			return testutil.ToFloat64(e.m.packetsDropped.WithLabelValues("secure", reason))
		}
	}
	tap.sendTampered(t)
	waitFor(t, "the tampered packet counted", func() bool { return series("packets", "data_auth") >= 1 })
	if n := series("handshake", "auth"); n != 0 {
		t.Fatalf("a tampered data packet counted as %v handshake auth failures", n)
	}

	raw, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(e.addr)))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	forged := make([]byte, transport.DataOverhead+8)
	forged[0] = transport.PacketData
	forged[4], forged[5], forged[6], forged[7] = 0xde, 0xad, 0xbe, 0xef // no such session
	raw.Write(forged)
	raw.Write([]byte{0x7f, 0, 0}) // too short for any packet
	waitFor(t, "unknown index and malformed counted", func() bool {
		return series("packets", "unknown_index") >= 1 && series("packets", "malformed") >= 1
	})
	// The genuine connection is untouched.
	if _, err := c.Discover(ctxT(t), mxp.DiscoverRequest{}); err != nil {
		t.Fatalf("after the forgeries: %v", err)
	}
}

// TestSecureLimitsConfig: the secure transport's limits load from the file layer's
// neighbours (environment and flags), default to the transport's defaults, and reach the
// listener's configuration.
func TestSecureLimitsConfig(t *testing.T) {
	l := &config.Loader[Config]{Service: "edge", Defaults: Defaults,
		Env:  []string{"MXP_EDGE_SECURE_MAX_PENDING_PER_SOURCE=8", "MXP_EDGE_SECURE_HANDSHAKE_RATE_PER_SOURCE=-1"},
		Args: []string{"--secure-max-connections", "500"}}
	cfg, err := l.Load()
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Secure
	if s.MaxConnections != 500 || s.MaxPendingPerSource != 8 || s.HandshakeRatePerSource != -1 {
		t.Fatalf("loaded %+v", s)
	}
	if s.MaxConnectionsPerSource != transport.DefaultMaxConnectionsPerSource || s.HandshakeRatePerKey != transport.DefaultHandshakeRatePerKey ||
		s.MaxPendingHandshakes != transport.DefaultMaxPendingHandshakes || s.HandshakeBurstPerSource != transport.DefaultHandshakeBurstPerSource {
		t.Fatalf("defaults not applied: %+v", s)
	}
	tc := s.transportConfig(time.Minute)
	if tc.MaxConnections != 500 || tc.MaxPendingPerSource != 8 || tc.HandshakeRatePerSource != -1 || tc.IdleTimeout != time.Minute {
		t.Fatalf("transport config %+v", tc)
	}
}
