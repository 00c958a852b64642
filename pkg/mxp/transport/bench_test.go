package transport

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/mxp-mesh/mesh/pkg/mxp/transport/netem"
)

// udpEcho is the plain-UDP baseline: a client socket and an echoing server on loopback
// (netem's, which `mxp udp-echo` also runs).
type udpEcho struct {
	p   *netem.UDPPinger
	msg []byte
}

func newUDPEcho(b *testing.B, size int) *udpEcho {
	srv, err := netem.ListenUDPEcho("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	p, err := netem.DialUDPPinger(srv.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close(); srv.Close() })
	return &udpEcho{p: p, msg: make([]byte, size)}
}

// roundTrips runs n plain UDP round trips and returns the time they took.
func (u *udpEcho) roundTrips(n int) time.Duration {
	d, _ := u.p.RoundTrips(n, u.msg)
	return d
}

// BenchmarkEchoRTT256 measures the round trip of a 256-byte message over the secure
// transport and reports it as a ratio to a plain UDP echo measured in the same run,
// interleaved in blocks so that both see the same machine load. The client sends and
// then waits in Receive, as the plain UDP client writes and then reads. The server echoes
// from OnMessage ("handler", as `mxp echo-server` does: like the plain UDP server, the
// goroutine that reads the socket answers) or from a goroutine looping on Receive
// ("receive_loop", one goroutine hand-off more per message).
func BenchmarkEchoRTT256(b *testing.B) {
	b.Run("handler", func(b *testing.B) {
		_, c, _ := pair(b, Config{OnMessage: func(ctx context.Context, s *Conn, m []byte) { s.Send(ctx, m) }}, Config{})
		benchEcho(b, c)
	})
	b.Run("receive_loop", func(b *testing.B) {
		_, c, s := pair(b, Config{}, Config{})
		go func() {
			ctx := context.Background()
			for {
				m, err := s.Receive(ctx)
				if err != nil {
					return
				}
				s.Send(ctx, m)
			}
		}()
		benchEcho(b, c)
	})
}

func benchEcho(b *testing.B, c *Conn) {
	ctx := context.Background()
	base := newUDPEcho(b, 256)
	base.roundTrips(100)
	msg := make([]byte, 256)
	const block = 500
	var ours, plain time.Duration
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(block, b.N-done)
		start := time.Now()
		for range n {
			c.Send(ctx, msg)
			if _, err := c.Receive(ctx); err != nil {
				b.Fatal(err)
			}
		}
		ours += time.Since(start)
		plain += base.roundTrips(n)
		done += n
	}
	b.StopTimer()
	b.ReportMetric(float64(ours.Nanoseconds())/float64(b.N)/1e3, "rtt_us")
	b.ReportMetric(float64(plain.Nanoseconds())/float64(b.N)/1e3, "udp_rtt_us")
	b.ReportMetric(float64(ours)/float64(plain), "x_baseline")
}

// BenchmarkOneWay256 measures 256-byte messages per second one way on one connection.
func BenchmarkOneWay256(b *testing.B) {
	_, c, s := pair(b, Config{}, Config{})
	ctx := context.Background()
	done := make(chan struct{})
	go func() {
		for range b.N {
			if _, err := s.Receive(ctx); err != nil {
				break
			}
		}
		close(done)
	}()
	msg := make([]byte, 256)
	b.SetBytes(256)
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if err := c.Send(ctx, msg); err != nil {
			b.Fatal(err)
		}
	}
	<-done
	el := time.Since(start)
	b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
}

// udpBlast measures the baseline: total bytes as 1200-byte datagrams, counted at the
// receiver (lost datagrams do not count), in bytes per second.
func udpBlast(b *testing.B, total int) float64 {
	srv, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer srv.Close()
	srv.SetReadBuffer(4 << 20)
	cli, _ := net.DialUDP("udp4", nil, srv.LocalAddr().(*net.UDPAddr))
	defer cli.Close()
	cli.SetWriteBuffer(4 << 20)
	got := make(chan int)
	go func() {
		buf := make([]byte, 2048)
		n := 0
		for {
			srv.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			k, err := srv.Read(buf)
			if err != nil {
				got <- n
				return
			}
			n += k
		}
	}()
	msg := make([]byte, 1200)
	start := time.Now()
	for sent := 0; sent < total; sent += 1200 {
		cli.Write(msg)
	}
	n := <-got
	el := time.Since(start) - 100*time.Millisecond
	return float64(n) / el.Seconds()
}

// BenchmarkBulk64MiB sends 64 MiB as four 16 MiB messages and reports the throughput as
// a ratio to a plain UDP blast of 1200-byte datagrams.
func BenchmarkBulk64MiB(b *testing.B) {
	_, c, s := pair(b, Config{}, Config{})
	ctx := context.Background()
	msg := make([]byte, 16<<20)
	b.SetBytes(64 << 20)
	b.ResetTimer()
	var el time.Duration
	for range b.N {
		start := time.Now()
		done := make(chan struct{})
		go func() {
			for range 4 {
				s.Receive(ctx)
			}
			close(done)
		}()
		for range 4 {
			c.Send(ctx, msg)
		}
		<-done
		el += time.Since(start)
	}
	b.StopTimer()
	rate := float64(b.N*64<<20) / el.Seconds()
	base := udpBlast(b, 64<<20)
	b.ReportMetric(rate/1e6, "MB/s")
	b.ReportMetric(base/1e6, "udp_MB/s")
	b.ReportMetric(rate/base, "x_baseline")
}

// BenchmarkHandshakeResponder measures the handshakes per second a server completes on
// one core: mac1 check, consuming an initiation, writing the response and deriving keys.
func BenchmarkHandshakeResponder(b *testing.B) {
	srv := newStaticIdentity(mustKey(b))
	cli := newStaticIdentity(mustKey(b))
	spk, cpk := newPeerKeys(srv.public), newPeerKeys(cli.public)
	var psk [KeySize]byte
	st, err := createInitiation(cli, &spk, 1, nextTimestamp(), 1, nil)
	if err != nil {
		b.Fatal(err)
	}
	cc := newCookieChecker(srv)
	b.ResetTimer()
	for range b.N {
		if !cc.checkMAC1(st.packet[:]) {
			b.Fatal("mac1")
		}
		in, err := consumeInitiation(srv, st.packet[:])
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := createResponse(in, &psk, 2, &cpk, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handshakes/s")
}

// BenchmarkHandshake measures full handshakes (both sides: initiation, response, key
// derivation) per second on one core, without sockets.
func BenchmarkHandshake(b *testing.B) {
	srv := newStaticIdentity(mustKey(b))
	cli := newStaticIdentity(mustKey(b))
	spk, cpk := newPeerKeys(srv.public), newPeerKeys(cli.public)
	var psk [KeySize]byte
	b.ResetTimer()
	for i := range b.N {
		st, err := createInitiation(cli, &spk, uint32(i), nextTimestamp(), 1, nil)
		if err != nil {
			b.Fatal(err)
		}
		in, err := consumeInitiation(srv, st.packet[:])
		if err != nil {
			b.Fatal(err)
		}
		resp, _, err := createResponse(in, &psk, 2, &cpk, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := consumeResponse(cli, &spk, &psk, st, resp[:]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handshakes/s")
}

// BenchmarkSealOpen measures the data path crypto of one 1200-byte packet.
func BenchmarkSealOpen(b *testing.B) {
	k := sessionKeys{}
	kp := newKeypair(k, 1, 2, true, time.Now())
	buf := make([]byte, DefaultPacketSize)
	b.SetBytes(DefaultPacketSize)
	b.ReportAllocs()
	var n [12]byte // outside the loop, as the connection keeps it: sealing does not allocate
	for i := range b.N {
		n = nonce(uint64(i))
		out := kp.send.Seal(buf[DataHeaderSize:DataHeaderSize], n[:], buf[DataHeaderSize:DefaultPacketSize-TagSize], buf[:DataHeaderSize])
		if _, err := kp.send.Open(out[:0], n[:], out, buf[:DataHeaderSize]); err != nil {
			b.Fatal(err)
		}
	}
}
