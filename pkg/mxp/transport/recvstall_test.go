package transport

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// The receive budget must never lock up (issue 15 review, reassembly.go's invariants).
// Each test uses a 64 KiB budget and 24 KiB messages, so that a few connections fill it.

// stallConfig is a listener configuration whose budget a few 24 KiB messages fill.
func stallConfig(t testing.TB) Config {
	return Config{PrivateKey: mustKey(t), RecvBudget: 64 << 10, MaxMessageSize: 24 << 10}
}

// dialN connects n clients to l and returns them with their server-side connections.
func dialN(t testing.TB, ctx context.Context, l *Listener, n int) (clients, servers []*Conn) {
	t.Helper()
	for range n {
		c, err := Dial(ctx, l.Addr().String(), l.PublicKey(), Config{PrivateKey: mustKey(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		s, err := l.Accept(ctx)
		if err != nil {
			t.Fatal(err)
		}
		clients, servers = append(clients, c), append(servers, s)
	}
	return clients, servers
}

// waitPackets waits until s has processed (accepted or refused) want authenticated
// packets: the raw frames a test sent to it have all been through the receiver.
func waitPackets(t testing.TB, ctx context.Context, s *Conn, want uint64) {
	t.Helper()
	for s.Stats().PacketsReceived < want {
		select {
		case <-ctx.Done():
			t.Fatalf("%d of %d packets processed", s.Stats().PacketsReceived, want)
		case <-time.After(time.Millisecond):
		}
	}
}

// Variant A: one connection holds out-of-order bytes after a gap it never fills (half the
// budget's worth); another connection's 5-byte message must still be received. The old
// receiver refused every new message once the budget was half full, forever.
func TestRecvBudgetFragmentsDoNotStarveOthers(t *testing.T) {
	checkNoLeak(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, err := Listen(ctx, "127.0.0.1:0", stallConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cs, ss := dialN(t, ctx, l, 2)
	atk, good := cs[0], cs[1]
	want := ss[0].Stats().PacketsReceived
	chunk := make([]byte, 1000)
	total := uint64(32<<10 - fragmentOverhead - 2)
	for off := uint64(100); off < 100+total; off += 1000 {
		n := min(uint64(1000), 100+total-off)
		fr := appendStreamHeader(nil, off, int(n))
		sendFramesForTest(atk, append(fr, chunk[:n]...))
		want++
	}
	waitPackets(t, ctx, ss[0], want)
	if held, lim := l.Stats().RecvHeld, int64(64<<10)/8; held > lim {
		t.Fatalf("one connection holds %d bytes out of order, over its cap of %d", held, lim)
	}
	if err := good.Send(ctx, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	m, err := ss[1].Receive(ctx)
	if err != nil || string(m) != "hello" {
		t.Fatalf("a fresh connection's message while another holds fragments: %q, %v (held %d)", m, err, l.Stats().RecvHeld)
	}
}

// Variant B, hostile: six connections each start a 24 KiB message and send 20 KiB of it,
// never the rest. The old receiver let their partial messages fill the whole budget, and
// then nothing could be received; now each message is reserved whole at its prefix, so
// those that do not fit have not started, and the budget left takes a new message.
func TestRecvBudgetPartialsDoNotLock(t *testing.T) {
	checkNoLeak(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, err := Listen(ctx, "127.0.0.1:0", stallConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const n = 6
	cs, ss := dialN(t, ctx, l, n+1)
	good := cs[n]
	want := make([]uint64, n)
	for i, c := range cs[:n] {
		want[i] = ss[i].Stats().PacketsReceived + 1
		fr := appendStreamHeader(nil, 0, 4)
		sendFramesForTest(c, appendVarint(fr, 24<<10))
	}
	body := make([]byte, 1000)
	for off := uint64(4); off < 4+20<<10; off += 1000 {
		for i, c := range cs[:n] {
			fr := appendStreamHeader(nil, off, 1000)
			sendFramesForTest(c, append(fr, body...))
			want[i]++
		}
	}
	for i := range n {
		waitPackets(t, ctx, ss[i], want[i])
	}
	if held := l.Stats().RecvHeld; held > 64<<10 {
		t.Fatalf("holding %d bytes over a budget of %d", held, 64<<10)
	}
	if err := good.Send(ctx, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	m, err := ss[n].Receive(ctx)
	if err != nil || string(m) != "hello" {
		t.Fatalf("a fresh connection's message while partial messages are held: %q, %v (held %d)", m, err, l.Stats().RecvHeld)
	}
}

// Variant B, honest: eight clients each Send a 24 KiB message at once, round after round,
// and the server reads them all. The old receiver let the partial messages fill the whole
// budget in about one round in three, and then stayed stuck for good (senders kept
// retransmitting and were acknowledged, so no timeout ended it).
func TestRecvBudgetConcurrentSendsComplete(t *testing.T) {
	checkNoLeak(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l, err := Listen(ctx, "127.0.0.1:0", stallConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const n, rounds = 8, 8
	cs, ss := dialN(t, ctx, l, n)
	for round := range rounds {
		var wg sync.WaitGroup
		for i, c := range cs {
			wg.Go(func() {
				msg := make([]byte, 24<<10)
				msg[0], msg[len(msg)-1] = byte(round), byte(i)
				if err := c.Send(ctx, msg); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		errs := make([]error, n)
		for i, s := range ss {
			wg.Go(func() {
				m, err := s.Receive(ctx)
				if err == nil && (len(m) != 24<<10 || m[0] != byte(round) || m[len(m)-1] != byte(i)) {
					err = errors.New("wrong message")
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				st := l.Stats()
				t.Fatalf("round %d, client %d: %v (held %d, drops %d)", round, i, err, st.RecvHeld, st.RecvBudgetDrops)
			}
		}
	}
	if st := l.Stats(); st.RecvBudgetEvictions != 0 {
		t.Fatalf("%d honest connections evicted", st.RecvBudgetEvictions)
	}
}

// The way out: connections whose application does not read fill the budget; when data
// is refused and nothing is returned for RecvStallTimeout, the listener closes the
// connection holding the most (CloseRecvBudget: ErrRecvBudget on both sides, counted),
// and the refused sender's message then arrives.
func TestRecvBudgetStallEvictsLargestHolder(t *testing.T) {
	checkNoLeak(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, err := Listen(ctx, "127.0.0.1:0", stallConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cs, ss := dialN(t, ctx, l, 2)
	hog, other := cs[0], cs[1]
	for range 2 { // two messages: 49160 bytes held, under the connection's cap
		if err := hog.Send(ctx, make([]byte, 24<<10)); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, ctx, "the hog's messages held", func() bool { return ss[0].Stats().MessagesReceived == 2 })
	if err := other.Send(ctx, []byte("let me in")); err != nil {
		t.Fatal(err)
	}
	// It fits now: 9 + 1 bytes. A 24 KiB one does not, until the hog is evicted.
	if m, err := ss[1].Receive(ctx); err != nil || string(m) != "let me in" {
		t.Fatalf("%q, %v", m, err)
	}
	if err := other.Send(ctx, make([]byte, 24<<10)); err != nil {
		t.Fatal(err)
	}
	m, err := ss[1].Receive(ctx)
	if err != nil || len(m) != 24<<10 {
		t.Fatalf("the refused sender's message after the eviction: %d bytes, %v", len(m), err)
	}
	<-ss[0].Done()
	if err := ss[0].Err(); !errors.Is(err, ErrRecvBudget) {
		t.Fatalf("the largest holder closed with %v, want ErrRecvBudget", err)
	}
	<-hog.Done()
	var ce *CloseError
	if err := hog.Err(); !errors.As(err, &ce) || ce.Code != CloseRecvBudget || !errors.Is(err, ErrRecvBudget) {
		t.Fatalf("the evicted client got %v, want CLOSE code %d (ErrRecvBudget)", err, CloseRecvBudget)
	}
	if st := l.Stats(); st.RecvBudgetEvictions != 1 {
		t.Fatalf("%d evictions counted, want 1", st.RecvBudgetEvictions)
	}
	if held := l.Stats().RecvHeld; held != 0 {
		t.Fatalf("%d bytes still charged after every message was taken or evicted", held)
	}
}

// waitUntil polls cond until it holds or ctx ends.
func waitUntil(t testing.TB, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
}

// A message whose length prefix is completed by an acknowledged fragment waits for its
// reservation with nothing left for its sender to resend: the timer retries it
// (RecvRetryInterval) once the budget frees up, and the message arrives whole.
func TestRecvBudgetWaitingReservationRetried(t *testing.T) {
	checkNoLeak(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, err := Listen(ctx, "127.0.0.1:0", stallConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cs, ss := dialN(t, ctx, l, 3)
	hog, x := cs[0], cs[1]
	const size = 7000 // with its prefix and overhead, within the out-of-order cap (8 KiB)
	stream := appendVarint(nil, size)
	for i := range size {
		stream = append(stream, byte(i))
	}
	// Out of order first, while the budget is empty: all but the first byte of the
	// prefix, kept as fragments and acknowledged.
	want := ss[1].Stats().PacketsReceived
	for off := 1; off < len(stream); off += 1000 {
		end := min(off+1000, len(stream))
		sendFramesForTest(x, append(appendStreamHeader(nil, uint64(off), end-off), stream[off:end]...))
		want++
	}
	waitPackets(t, ctx, ss[1], want)
	// The hog's two unread messages take 49160 of the 65536 bytes (with the fragments' 7337).
	for range 2 {
		if err := hog.Send(ctx, make([]byte, 24<<10)); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, ctx, "the hog's messages held", func() bool { return ss[0].Stats().MessagesReceived == 2 })
	// And a third connection's 3000 bytes: 59499 held with the fragments.
	if err := cs[2].Send(ctx, make([]byte, 3000)); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, ctx, "the third message held", func() bool { return ss[2].Stats().MessagesReceived == 1 })
	// The gap: the prefix completes inside a fragment and its reservation (7002 bytes)
	// does not fit beside them; the packet is acknowledged (its byte
	// is kept) and the sender has nothing left to send.
	sendFramesForTest(x, append(appendStreamHeader(nil, 0, 1), stream[0]))
	waitPackets(t, ctx, ss[1], want+1)
	if n := ss[1].Stats().MessagesReceived; n != 0 {
		t.Fatalf("%d messages received before the budget freed up", n)
	}
	for _, s := range []*Conn{ss[0], ss[0], ss[2]} {
		if _, err := s.Receive(ctx); err != nil {
			t.Fatal(err)
		}
	}
	m, err := ss[1].Receive(ctx)
	if err != nil || len(m) != size || m[0] != 0 || m[size-1] != byte((size-1)%256) {
		t.Fatalf("the waiting message: %d bytes, %v", len(m), err)
	}
}
