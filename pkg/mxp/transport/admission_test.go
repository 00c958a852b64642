package transport

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

// cookieFlooder is the attacker of issue 15 point 6: from one UDP socket it fetches the
// listener's cookie for its own address, as any initiator under load does, and then sends
// initiations that carry a valid mac2, each with a new connection id (so each would be a
// new connection). The initiations are made in advance: the flood costs the attacker no
// Diffie-Hellman work while it runs.
type cookieFlooder struct {
	sock   *net.UDPConn
	server netip.AddrPort
	pkts   [][]byte
}

// newCookieFlooder binds ip (127.0.0.1), fetches its cookie from l as an initiator under
// load would (sending fresh initiations until the listener, under load, answers one with
// a cookie reply: at once with UnderLoadHandshakes < 0, after about UnderLoadHandshakes
// of them otherwise) and prepares n initiations under one client key.
func newCookieFlooder(t testing.TB, l *Listener, ip net.IP, n int) *cookieFlooder {
	t.Helper()
	sock, err := net.ListenUDP("udp4", &net.UDPAddr{IP: ip})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sock.Close() })
	f := &cookieFlooder{sock: sock, server: l.Addr().(*net.UDPAddr).AddrPort()}
	attacker := newStaticIdentity(mustKey(t))
	server := newPeerKeys(l.PublicKey())
	probes := map[uint32]*initiatorState{}
	var cookie [MACSize]byte
	buf := make([]byte, 2048)
	for got := false; !got; {
		if len(probes) > 8192 {
			t.Fatal("no cookie reply after 8192 initiations")
		}
		// A burst of fresh initiations, sent faster than UnderLoadHandshakes per second.
		var burst [][]byte
		for range 256 {
			idx := uint32(len(probes) + 1)
			st, err := createInitiation(attacker, &server, idx, nextTimestamp(), uint64(idx)<<32, nil)
			if err != nil {
				t.Fatal(err)
			}
			probes[idx] = st
			burst = append(burst, st.packet[:])
		}
		for _, p := range burst {
			sock.WriteToUDPAddrPort(p, f.server)
		}
		for {
			sock.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			m, err := sock.Read(buf)
			if err != nil {
				break // this burst drew no cookie: send a bigger one
			}
			if m != CookieReplySize || buf[0] != PacketCookieReply {
				continue
			}
			recv, _ := parseCookieReply(buf[:m])
			if st := probes[recv]; st != nil {
				if cookie, err = openCookieReply(&server, buf[:m], st.packet[:]); err == nil {
					got = true
					break
				}
			}
		}
	}
	sock.SetReadDeadline(time.Time{})
	for i := range n {
		st, err := createInitiation(attacker, &server, uint32(i+1), nextTimestamp(), uint64(i+1), &cookie)
		if err != nil {
			t.Fatal(err)
		}
		f.pkts = append(f.pkts, st.packet[:])
	}
	return f
}

// send sends the prepared initiations in chunks, waiting after each chunk until the
// listener has read it (so that the kernel's socket buffer never drops any).
func (f *cookieFlooder) send(t testing.TB, l *Listener) {
	t.Helper()
	const chunk = 32
	for i := 0; i < len(f.pkts); i += chunk {
		target := l.Stats().PacketsReceived
		for _, p := range f.pkts[i:min(i+chunk, len(f.pkts))] {
			if _, err := f.sock.WriteToUDPAddrPort(p, f.server); err != nil {
				t.Fatal(err)
			}
			target++
		}
		waitFor(t, "the flood read", func() bool { return l.Stats().PacketsReceived >= target })
	}
}

// TestAttackCookieAnsweringFlood is the regression test of issue 15 point 6: an attacker
// that answers cookies floods the listener from 127.0.0.1 with valid initiations, each for
// a new connection. Its source's token bucket and pending cap hold its connections to
// MaxPendingPerSource (on the old code every initiation made a connection: 600 here), and
// a legitimate client dialling from 127.0.0.2 still connects. Counters, not times, are
// asserted; BenchmarkDialUnderFlood measures the dial.
func TestAttackCookieAnsweringFlood(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const flood, pendingCap = 600, 16
	l, err := Listen(ctx, "127.0.0.1:0", Config{PrivateKey: mustKey(t), UnderLoadHandshakes: -1,
		MaxPendingPerSource: pendingCap, HandshakeTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	f := newCookieFlooder(t, l, net.IPv4(127, 0, 0, 1), flood)
	f.send(t, l)

	c, err := dialFrom(ctx, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)}, l.Addr().String(), l.PublicKey(), Config{PrivateKey: mustKey(t)})
	if err != nil {
		t.Fatalf("legitimate dial during the flood: %v", err)
	}
	defer c.Close()
	s, err := l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.RemoteAddr().(*net.UDPAddr).IP; !got.Equal(net.IPv4(127, 0, 0, 2)) {
		t.Fatalf("accepted %v, want the legitimate client", got)
	}
	st := l.Stats()
	if st.Connections > pendingCap+1 {
		t.Fatalf("%d connections after a flood of %d from one source (cap %d + the legitimate one): %+v", st.Connections, flood, pendingCap, st)
	}
	if st.RateLimitedSource == 0 {
		t.Fatalf("no initiation was rate-limited: %+v", st)
	}
	if st.RateLimitedSource+st.RefusedSourcePending < flood-pendingCap {
		t.Fatalf("refusals %d+%d, want at least %d: %+v", st.RateLimitedSource, st.RefusedSourcePending, flood-pendingCap, st)
	}
	// The attacker's unconfirmed connections expire and give their places back.
	waitFor(t, "the flood's connections expired", func() bool {
		st := l.Stats()
		return st.Connections == 1 && st.PendingHandshakes == 0
	})
	l.mu.Lock()
	sources := len(l.sources)
	l.mu.Unlock()
	if sources != 1 {
		t.Fatalf("%d sources tracked with one connection open", sources)
	}
}

// TestAdmissionCaps dials real connections against small caps and checks that each cap
// refuses with its own counter and a typed error to the client (ErrRefused, the cap's
// name as the reason), that a rekey is never refused and that a closed connection gives
// its place back.
func TestAdmissionCaps(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, err := Listen(ctx, "127.0.0.1:0", Config{PrivateKey: mustKey(t), MaxConnections: 4, MaxConnectionsPerSource: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dial := func(ip byte, rekey time.Duration) (*Conn, error) {
		cfg := Config{PrivateKey: mustKey(t), HandshakeTimeout: 600 * time.Millisecond}
		if rekey > 0 {
			cfg.RekeyAfter, cfg.RejectAfter = rekey, 10*time.Second
		}
		return dialFrom(ctx, &net.UDPAddr{IP: net.IPv4(127, 0, 0, ip)}, l.Addr().String(), l.PublicKey(), cfg)
	}
	var open []*Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	admit := func(ip byte, rekey time.Duration) {
		t.Helper()
		c, err := dial(ip, rekey)
		if err != nil {
			t.Fatalf("dial from 127.0.0.%d under the caps: %v", ip, err)
		}
		open = append(open, c)
	}
	admit(1, 300*time.Millisecond)
	admit(1, 0)
	admit(2, 0)
	// A refused client learns why at once: ErrRefused, from Dial or (when the CLOSE came
	// just after Dial returned) from the connection.
	refused := func(ip byte, reason string) {
		t.Helper()
		c, err := dial(ip, 0)
		if err == nil {
			_, err = c.Receive(ctx)
			c.Close()
		}
		var ce *CloseError
		if !errors.Is(err, ErrRefused) || !errors.As(err, &ce) || ce.Reason != reason {
			t.Fatalf("dial from 127.0.0.%d over a cap: %v, want ErrRefused (%s)", ip, err, reason)
		}
	}
	refused(1, refusedSourceConns)
	admit(2, 0)
	refused(3, refusedMaxConnections)
	st := l.Stats()
	if st.RefusedSourceConns == 0 || st.RefusedMaxConnections == 0 || st.Connections != 4 {
		t.Fatalf("caps not counted: %+v", st)
	}
	// The first connection rekeys after 300 ms: their new keys must still be accepted.
	before := st.HandshakesCompleted
	waitFor(t, "a rekey at the cap", func() bool { return l.Stats().HandshakesCompleted > before })
	open[0].Close()
	waitFor(t, "the place given back", func() bool { return l.Stats().Connections == 3 })
	admit(3, 0)
}

// TestRateLimiter checks the token bucket on a synthetic clock: the burst, the refill,
// the sweep of idle buckets and the bound on the table.
func TestRateLimiter(t *testing.T) {
	r := newRateLimiter[int](10, 3) // 10/s, burst 3
	t0 := time.Unix(1000, 0)
	for i := range 3 {
		if !r.allow(1, t0) {
			t.Fatalf("event %d of the burst refused", i)
		}
	}
	if r.allow(1, t0) {
		t.Fatal("event past the burst allowed")
	}
	if !r.allow(2, t0) {
		t.Fatal("another key shares the bucket")
	}
	if r.allow(1, t0.Add(50*time.Millisecond)) || !r.allow(1, t0.Add(100*time.Millisecond)) {
		t.Fatal("refill is not one token per 100 ms")
	}
	if r.allow(1, t0.Add(50*time.Millisecond)) {
		t.Fatal("a clock stepping back refilled the bucket")
	}
	r.allow(3, t0.Add(2*time.Second)) // sweeps: 1 and 2 are full again
	if n := r.len(); n != 1 {
		t.Fatalf("%d buckets after the sweep, want 1", n)
	}
	for i := range MaxRateLimitEntries + 10 {
		r.allow(i+10, t0.Add(2*time.Second))
	}
	if n := r.len(); n > MaxRateLimitEntries {
		t.Fatalf("%d buckets, bound %d", n, MaxRateLimitEntries)
	}
	off := newRateLimiter[int](-1, 0)
	for range 100 {
		if !off.allow(1, t0) {
			t.Fatal("a disabled limiter refused")
		}
	}
}

func TestSourceOf(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"127.0.0.1:9", "127.0.0.1"},
		{"[::ffff:10.1.2.3]:9", "10.1.2.3"},
		{"[2001:db8:1:2:3:4:5:6]:9", "2001:db8:1:2::"},
		{"[fe80::1%eth0]:9", "fe80::"},
	} {
		if got := sourceOf(netip.MustParseAddrPort(tt.in)); got.String() != tt.want {
			t.Errorf("sourceOf(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
