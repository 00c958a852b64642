package transport

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

func mustKey(t testing.TB) PrivateKey {
	t.Helper()
	k, err := GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// pair starts a listener and dials it; both are closed at cleanup.
func pair(t testing.TB, scfg, ccfg Config) (*Listener, *Conn, *Conn) {
	t.Helper()
	if scfg.PrivateKey.IsZero() {
		scfg.PrivateKey = mustKey(t)
	}
	if ccfg.PrivateKey.IsZero() {
		ccfg.PrivateKey = mustKey(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := Listen(ctx, "127.0.0.1:0", scfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	c, err := Dial(ctx, l.Addr().String(), l.PublicKey(), ccfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s, err := l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return l, c, s
}

// checkNoLeak fails when goroutines started by the test outlive it.
func checkNoLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(3 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<16)
			t.Errorf("%d goroutines leaked:\n%s", n-before, buf[:runtime.Stack(buf, true)])
		}
	})
}

func TestMessagesBothWays(t *testing.T) {
	checkNoLeak(t)
	_, c, s := pair(t, Config{}, Config{})
	if s.PeerKey() != c.ep.local.public {
		t.Fatal("server sees the wrong client key")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sizes := []int{0, 1, 100, 1200, 5000, 70000, 1 << 20}
	go func() {
		for range sizes {
			m, err := s.Receive(ctx)
			if err != nil {
				return
			}
			s.Send(ctx, m)
		}
	}()
	for _, n := range sizes {
		msg := make([]byte, n)
		for i := range msg {
			msg[i] = byte(rand.IntN(256))
		}
		if err := c.Send(ctx, msg); err != nil {
			t.Fatal(err)
		}
		got, err := c.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("size %d: echo differs", n)
		}
	}
	st := c.Stats()
	if st.MessagesReceived != uint64(len(sizes)) || st.SmoothedRTT <= 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestCloseNotifiesPeer(t *testing.T) {
	checkNoLeak(t)
	_, c, s := pair(t, Config{}, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Send(ctx, []byte("last words")); err != nil {
		t.Fatal(err)
	}
	c.Close()
	m, err := s.Receive(ctx)
	if err != nil || string(m) != "last words" {
		t.Fatalf("got %q, %v", m, err)
	}
	if _, err := s.Receive(ctx); !errors.Is(err, ErrPeerClosed) {
		t.Fatalf("after close: %v", err)
	}
}

func TestLoopbackFamilies(t *testing.T) {
	checkNoLeak(t)
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		t.Run(addr, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			l, err := Listen(ctx, addr, Config{PrivateKey: mustKey(t)})
			if err != nil {
				t.Skipf("no %s: %v", addr, err)
			}
			defer l.Close()
			c, err := Dial(ctx, l.Addr().String(), l.PublicKey(), Config{PrivateKey: mustKey(t)})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			s, err := l.Accept(ctx)
			if err != nil {
				t.Fatal(err)
			}
			big := bytes.Repeat([]byte{7}, 300_000) // many full packets: the GSO path
			if err := c.Send(ctx, big); err != nil {
				t.Fatal(err)
			}
			if m, err := s.Receive(ctx); err != nil || !bytes.Equal(m, big) {
				t.Fatalf("%v", err)
			}
		})
	}
}

// TestSendLaterFlush checks SendLater's contract: queued messages wait for Flush (while
// less than a packet of them is queued), then arrive in order, in fewer packets than
// messages; a Send after SendLater carries the queued ones too.
func TestSendLaterFlush(t *testing.T) {
	_, c, s := pair(t, Config{}, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Settle the handshake's own packets first.
	if err := c.Send(ctx, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // delayed ACKs of the hello have gone out
	before := c.Stats().PacketsSent
	const n = 10
	for i := range n {
		if err := c.SendLater(ctx, []byte{byte(i), 'x', 'y'}); err != nil {
			t.Fatal(err)
		}
	}
	if got := c.Stats().PacketsSent; got != before {
		t.Fatalf("SendLater sent %d packets before Flush", got-before)
	}
	c.Flush()
	for i := range n {
		m, err := s.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m[0] != byte(i) {
			t.Fatalf("message %d arrived as %d", i, m[0])
		}
	}
	if sent := c.Stats().PacketsSent - before; sent >= n {
		t.Errorf("%d messages took %d packets; a flush should coalesce them", n, sent)
	}
	// A Send transmits what SendLater queued before it, in order.
	if err := c.SendLater(ctx, []byte("first")); err != nil {
		t.Fatal(err)
	}
	if err := c.Send(ctx, []byte("second")); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"first", "second"} {
		m, err := s.Receive(ctx)
		if err != nil || string(m) != want {
			t.Fatalf("got %q, %v; want %q", m, err, want)
		}
	}
}

// TestTrySend checks TrySend's contract: it queues and transmits like Send while the send
// buffer has room, returns ErrSendBufferFull at once (queuing nothing) when it has none,
// and works again once the peer's reads have freed the buffer; what it queued arrives in
// order.
func TestTrySend(t *testing.T) {
	checkNoLeak(t)
	_, c, s := pair(t, Config{SendBuffer: 1 << 20}, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	msg := make([]byte, 1<<20)
	sent := 0
	for ; sent < 64; sent++ { // 64 MiB: more than the send buffer and the peer's 24 MiB window
		msg[0] = byte(sent)
		err := c.TrySend(msg)
		if errors.Is(err, ErrSendBufferFull) {
			break
		}
		if err != nil {
			t.Fatalf("TrySend %d: %v", sent, err)
		}
	}
	if sent == 0 || sent == 64 {
		t.Fatalf("TrySend queued %d messages of 1 MiB with a 1 MiB send buffer; want some, then ErrSendBufferFull", sent)
	}
	for i := range sent {
		m, err := s.Receive(ctx)
		if err != nil || len(m) != len(msg) || m[0] != byte(i) {
			t.Fatalf("message %d: %d bytes, first %v, %v", i, len(m), m[0], err)
		}
	}
	// The refused message was not queued: the next one to arrive is the one sent now,
	// once ACKs have made room (Send waits for it; TrySend is then accepted too).
	if err := c.Send(ctx, []byte("after")); err != nil {
		t.Fatal(err)
	}
	if err := c.TrySend([]byte("try")); err != nil {
		t.Fatalf("TrySend with room: %v", err)
	}
	for _, want := range []string{"after", "try"} {
		m, err := s.Receive(ctx)
		if err != nil || string(m) != want {
			t.Fatalf("got %q, %v; want %q", m, err, want)
		}
	}
	if err := c.TrySend(make([]byte, MaxMessageSize+1)); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("TrySend over MaxMessageSize: %v", err)
	}
}
