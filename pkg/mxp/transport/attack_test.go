package transport

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// sniffer is a UDP man in the middle that forwards client→server packets and keeps a copy
// of each, so tests can replay or modify them.
type sniffer struct {
	front, back *net.UDPConn
	server      netip.AddrPort
	client      chan netip.AddrPort
	captured    chan []byte
	hold        atomic.Bool // capture client packets without forwarding them
}

func newSniffer(t *testing.T, server net.Addr) *sniffer {
	t.Helper()
	front, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	back, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s := &sniffer{front: front, back: back, server: server.(*net.UDPAddr).AddrPort(), client: make(chan netip.AddrPort, 1), captured: make(chan []byte, 4096)}
	done := make(chan struct{}, 2)
	go func() {
		defer func() { done <- struct{}{} }()
		buf := make([]byte, 2048)
		var client netip.AddrPort
		for {
			n, src, err := front.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if !client.IsValid() {
				client = src
				s.client <- src
			}
			select {
			case s.captured <- append([]byte(nil), buf[:n]...):
			default:
			}
			if !s.hold.Load() {
				back.WriteToUDPAddrPort(buf[:n], s.server)
			}
		}
	}()
	go func() {
		defer func() { done <- struct{}{} }()
		buf := make([]byte, 2048)
		client := <-s.client
		s.client <- client
		for {
			n, _, err := back.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			front.WriteToUDPAddrPort(buf[:n], client)
		}
	}()
	t.Cleanup(func() {
		front.Close()
		back.Close()
		select {
		case s.client <- netip.AddrPort{}:
		default:
		}
		<-done
		<-done
	})
	return s
}

// inject sends b to the server as if the client had (the sniffer's back socket is the
// address the server knows).
func (s *sniffer) inject(b []byte) { s.back.WriteToUDPAddrPort(b, s.server) }

func sniffedPair(t *testing.T, scfg Config) (*Listener, *sniffer, *Conn, *Conn) {
	t.Helper()
	return sniffedPairCfg(t, scfg, Config{})
}

// sniffedPairCfg is sniffedPair with the client's Config (its PrivateKey is set here).
func sniffedPairCfg(t *testing.T, scfg, ccfg Config) (*Listener, *sniffer, *Conn, *Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	scfg.PrivateKey = mustKey(t)
	l, err := Listen(ctx, "127.0.0.1:0", scfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	sn := newSniffer(t, l.Addr())
	ccfg.PrivateKey = mustKey(t)
	c, err := Dial(ctx, sn.front.LocalAddr().String(), l.PublicKey(), ccfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s, err := l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return l, sn, c, s
}

// lastData returns the most recent captured data packet carrying a message.
func capturedOfType(sn *sniffer, typ byte, minLen int) [][]byte {
	var out [][]byte
	for {
		select {
		case b := <-sn.captured:
			if b[0] == typ && len(b) >= minLen {
				out = append(out, b)
			}
		default:
			return out
		}
	}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAttackReplayedDataPacketDropped(t *testing.T) {
	_, sn, c, s := sniffedPair(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Send(ctx, []byte("pay the invoice once")); err != nil {
		t.Fatal(err)
	}
	if m, err := s.Receive(ctx); err != nil || string(m) != "pay the invoice once" {
		t.Fatalf("%q %v", m, err)
	}
	pkts := capturedOfType(sn, PacketData, DataOverhead+20)
	if len(pkts) == 0 {
		t.Fatal("no data packet captured")
	}
	before := s.Stats().ReplaysDropped
	for _, p := range pkts {
		sn.inject(p)
	}
	waitFor(t, "replays counted", func() bool { return s.Stats().ReplaysDropped >= before+uint64(len(pkts)) })
	short, c2 := context.WithTimeout(ctx, 100*time.Millisecond)
	defer c2()
	if m, err := s.Receive(short); err == nil {
		t.Fatalf("replayed message delivered again: %q", m)
	}
}

func TestAttackModifiedPacketDropped(t *testing.T) {
	_, sn, c, s := sniffedPair(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tests := []struct {
		name string
		mod  func([]byte) []byte
	}{
		{"ciphertext bit", func(b []byte) []byte { b[DataHeaderSize+3] ^= 1; return b }},
		{"tag bit", func(b []byte) []byte { b[len(b)-1] ^= 0x80; return b }},
		{"counter", func(b []byte) []byte { b[13] ^= 0x01; return b }},
		{"header reserved byte", func(b []byte) []byte { b[2] = 1; return b }},
		{"truncated", func(b []byte) []byte { return b[:len(b)-1] }},
		{"receiver index", func(b []byte) []byte { b[4] ^= 0xff; return b }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			capturedOfType(sn, PacketData, 0)
			sn.hold.Store(true)
			if err := c.Send(ctx, []byte("genuine "+tt.name)); err != nil {
				t.Fatal(err)
			}
			var pkts [][]byte
			waitFor(t, "capture", func() bool {
				pkts = append(pkts, capturedOfType(sn, PacketData, DataOverhead+8)...)
				return len(pkts) > 0
			})
			sn.hold.Store(false)
			orig := pkts[0]
			bad := tt.mod(append([]byte(nil), orig...))
			before := s.ep.listenerStats(0)
			sn.inject(bad)
			waitFor(t, "drop counted", func() bool {
				after := s.ep.listenerStats(0)
				return after.DataAuthFailed+after.Malformed+after.UnknownIndex > before.DataAuthFailed+before.Malformed+before.UnknownIndex
			})
			sn.inject(orig) // the genuine packet still gets through after the forgery
			if m, err := s.Receive(ctx); err != nil || string(m) != "genuine "+tt.name {
				t.Fatalf("after the forgery: %q %v", m, err)
			}
		})
	}
	if err := s.Err(); err != nil {
		t.Fatalf("modified packets closed the connection: %v", err)
	}
}

func TestAttackWrongServerKeyFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := Listen(ctx, "127.0.0.1:0", Config{PrivateKey: mustKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	wrong := mustKey(t).PublicKey()
	_, err = Dial(ctx, l.Addr().String(), wrong, Config{PrivateKey: mustKey(t), HandshakeTimeout: 600 * time.Millisecond})
	if !errors.Is(err, ErrHandshakeTimeout) {
		t.Fatalf("dial with the wrong server key: %v", err)
	}
	if st := l.Stats(); st.MAC1Failures == 0 || st.Connections != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestAttackClientNotAllowed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	allowed := mustKey(t)
	l, err := Listen(ctx, "127.0.0.1:0", Config{PrivateKey: mustKey(t), AllowPeer: func(k PublicKey) bool { return k == allowed.PublicKey() }})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = Dial(ctx, l.Addr().String(), l.PublicKey(), Config{PrivateKey: mustKey(t), HandshakeTimeout: 600 * time.Millisecond})
	if err == nil {
		t.Fatal("refused client connected")
	}
	if st := l.Stats(); st.PeersRefused == 0 || st.Connections != 0 {
		t.Fatalf("stats %+v", st)
	}
	c, err := Dial(ctx, l.Addr().String(), l.PublicKey(), Config{PrivateKey: allowed})
	if err != nil {
		t.Fatalf("allowed client: %v", err)
	}
	c.Close()
}

func TestAttackReplayedInitiationCreatesNoSession(t *testing.T) {
	l, sn, c, _ := sniffedPair(t, Config{})
	inits := capturedOfType(sn, PacketInitiation, InitiationSize)
	if len(inits) == 0 {
		t.Fatal("no initiation captured")
	}
	c.Close()
	waitFor(t, "connection gone", func() bool { return l.Stats().Connections == 0 })
	before := l.Stats()
	for _, p := range inits {
		sn.inject(p)
	}
	waitFor(t, "replay counted", func() bool { return l.Stats().InitiationsReplayed >= before.InitiationsReplayed+uint64(len(inits)) })
	if st := l.Stats(); st.Connections != 0 || st.SessionIndexes != before.SessionIndexes {
		t.Fatalf("replayed initiation created state: %+v", st)
	}
}

// TestAttackSpoofedFloodUnderLoad feeds initiations from many spoofed addresses straight
// into the listener: under load each draws one cookie reply smaller than the request and
// no state is created.
func TestAttackSpoofedFloodUnderLoad(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := Listen(ctx, "127.0.0.1:0", Config{PrivateKey: mustKey(t), UnderLoadHandshakes: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// A sink stands in for the spoofed sources so that replies can be measured.
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	sinkAddr := sink.LocalAddr().(*net.UDPAddr).AddrPort()
	attacker := newStaticIdentity(mustKey(t))
	server := newPeerKeys(l.PublicKey())
	const flood = 300
	now := time.Now()
	for i := range flood {
		st, err := createInitiation(attacker, &server, uint32(i+1), nextTimestamp(), uint64(i), nil)
		if err != nil {
			t.Fatal(err)
		}
		src := sinkAddr
		if i%2 == 1 { // spoofed sources nobody listens on
			src = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, byte(i >> 8), byte(i)}), uint16(1000+i))
		}
		l.ep.handlePacket(st.packet[:], src, now)
	}
	st := l.Stats()
	if st.CookieRepliesSent < flood-10-1 {
		t.Fatalf("cookie replies %d, want about %d", st.CookieRepliesSent, flood-10)
	}
	if st.CookieRepliesSent+st.HandshakesCompleted > flood {
		t.Fatalf("more replies than requests: %+v", st)
	}
	sink.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	buf := make([]byte, 2048)
	replies := 0
	for {
		n, err := sink.Read(buf)
		if err != nil {
			break
		}
		replies++
		if n > InitiationSize {
			t.Fatalf("reply of %d bytes to a %d-byte initiation", n, InitiationSize)
		}
	}
	if replies == 0 {
		t.Fatal("no reply reached the sink")
	}
	// Only the 10 initiations below the load threshold may have created state.
	if st.Connections > 10 {
		t.Fatalf("%d connections from a spoofed flood", st.Connections)
	}
}

func TestCookieRoundTripUnderLoad(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := Listen(ctx, "127.0.0.1:0", Config{PrivateKey: mustKey(t), UnderLoadHandshakes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := Dial(ctx, l.Addr().String(), l.PublicKey(), Config{PrivateKey: mustKey(t)})
	if err != nil {
		t.Fatalf("dial through the cookie exchange: %v", err)
	}
	defer c.Close()
	if l.Stats().CookieRepliesSent == 0 {
		t.Fatal("no cookie was asked for")
	}
}
