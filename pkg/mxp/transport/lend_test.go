package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// echoHandler is an OnMessage that answers every message with itself.
func echoHandler(ctx context.Context, c *Conn, m []byte) { c.Send(ctx, m) }

func TestOnMessageEchoesInOrder(t *testing.T) {
	checkNoLeak(t)
	l, c, s := pair(t, Config{OnMessage: echoHandler}, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Receive(ctx); !errors.Is(err, ErrOnMessage) {
		t.Fatalf("Receive with OnMessage set: %v, want ErrOnMessage", err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var sent [][]byte
	for i := range 2000 {
		m := make([]byte, 8+rng.IntN(3000))
		copy(m, fmt.Sprintf("%08d", i))
		sent = append(sent, m)
	}
	go func() {
		for _, m := range sent {
			if c.Send(ctx, m) != nil {
				return
			}
		}
	}()
	for i, want := range sent {
		got, err := c.Receive(ctx)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("message %d: got %q..., want %q...", i, got[:8], want[:8])
		}
	}
	if st := l.Stats(); st.Connections != 1 {
		t.Fatalf("listener has %d connections, want 1", st.Connections)
	}
}

// A handler whose Send finds the send buffer full gets ErrSendBufferFull at once instead of
// blocking the goroutine that must read the ACKs which would free it.
func TestOnMessageSendDoesNotBlock(t *testing.T) {
	checkNoLeak(t)
	type result struct {
		sent int
		err  error
	}
	results := make(chan result, 1)
	big := make([]byte, 8<<20)
	handler := func(ctx context.Context, c *Conn, m []byte) {
		for i := range 4 { // 32 MiB: more than the 24 MiB send buffer
			if err := c.Send(ctx, big); err != nil {
				results <- result{i, err}
				return
			}
		}
		results <- result{4, nil}
	}
	_, c, _ := pair(t, Config{OnMessage: handler}, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Send(ctx, []byte("go")); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-results:
		if !errors.Is(r.err, ErrSendBufferFull) || r.sent == 0 {
			t.Fatalf("handler sent %d messages, then %v; want some, then ErrSendBufferFull", r.sent, r.err)
		}
	case <-ctx.Done():
		t.Fatal("the handler blocked in Send")
	}
	// The connection still works: the client gets the messages that fit.
	for i := range r.sent {
		m, err := c.Receive(ctx)
		if err != nil || len(m) != len(big) {
			t.Fatalf("message %d: %d bytes, %v", i, len(m), err)
		}
	}
}

// Close from a handler closes at once (no lingering), and the client sees the close.
func TestOnMessageClose(t *testing.T) {
	checkNoLeak(t)
	closed := make(chan struct{})
	handler := func(ctx context.Context, c *Conn, m []byte) {
		c.Send(ctx, m)
		c.Close()
		close(closed)
	}
	_, c, _ := pair(t, Config{OnMessage: handler}, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.Send(ctx, []byte("bye"))
	select {
	case <-closed:
	case <-ctx.Done():
		t.Fatal("Close from the handler did not return")
	}
	if m, err := c.Receive(ctx); err != nil || string(m) != "bye" {
		t.Fatalf("Receive: %q, %v", m, err)
	}
	if _, err := c.Receive(ctx); !errors.Is(err, ErrPeerClosed) {
		t.Fatalf("after the server closed: %v, want ErrPeerClosed", err)
	}
}

// Receive on a dialled connection reads the socket itself. Every other duty of the read
// loop must still be done: several goroutines in Receive at once each get messages, none
// lost; a Receive whose context ends returns and leaves the socket readable for the next;
// a sender that never calls Receive still gets its ACKs (the read loop takes the socket
// back), or its Sends beyond the send buffer would block for good.
func TestReceiveReadsSocketDirectly(t *testing.T) {
	checkNoLeak(t)
	var bulk int // bytes of large messages, which the server counts instead of echoing
	handler := func(ctx context.Context, c *Conn, m []byte) {
		switch {
		case len(m) > 1024:
			bulk += len(m)
		case string(m) == "total":
			c.Send(ctx, fmt.Append(nil, bulk))
		default:
			c.Send(ctx, m)
		}
	}
	_, c, _ := pair(t, Config{OnMessage: handler}, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// A Receive that times out, then one that is cancelled, then one that works.
	short, cancelShort := context.WithTimeout(ctx, 20*time.Millisecond)
	if _, err := c.Receive(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Receive with a passed deadline: %v", err)
	}
	cancelShort()
	cctx, cancelC := context.WithCancel(ctx)
	time.AfterFunc(20*time.Millisecond, cancelC)
	if _, err := c.Receive(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Receive: %v", err)
	}
	// A round trip takes the socket from the read loop only if the Receive waits before
	// the echo is read (the loop lends it to a waiter after a batch); on a loaded machine
	// the loop can win a few times in a row, so a few round trips.
	for i := 0; i < 100 && (i == 0 || c.ep.lend.uses.Load() == 0); i++ {
		if err := c.Send(ctx, []byte("after")); err != nil {
			t.Fatal(err)
		}
		if m, err := c.Receive(ctx); err != nil || string(m) != "after" {
			t.Fatalf("Receive after a cancelled one: %q, %v", m, err)
		}
	}
	if c.ep.lend.uses.Load() == 0 {
		t.Fatal("Receive never read the socket itself in 100 round trips")
	}

	// Four goroutines receive the echoes of 4,000 messages.
	const n = 4000
	var mu sync.Mutex
	seen := make(map[string]int)
	var wg sync.WaitGroup
	var got int
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if got == n {
					mu.Unlock()
					return
				}
				got++
				mu.Unlock()
				m, err := c.Receive(ctx)
				if err != nil {
					t.Errorf("Receive: %v", err)
					return
				}
				mu.Lock()
				seen[string(m)]++
				mu.Unlock()
			}
		}()
	}
	for i := range n {
		if err := c.Send(ctx, fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("%d distinct messages received, want %d", len(seen), n)
	}
	for m, k := range seen {
		if k != 1 {
			t.Fatalf("%s received %d times", m, k)
		}
	}

	// 48 MiB sent without a Receive: twice the send buffer, so the ACKs must be read by
	// the read loop, which takes the socket back from the Receive callers above.
	chunk := make([]byte, 1<<20)
	for i := range 48 {
		if err := c.Send(ctx, chunk); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if err := c.Send(ctx, []byte("total")); err != nil {
		t.Fatal(err)
	}
	if m, err := c.Receive(ctx); err != nil || string(m) != fmt.Sprint(48<<20) {
		t.Fatalf("the server counted %q (%v), want %d", m, err, 48<<20)
	}
}

// A client that only sends (no Receive at all, as one pushing events) relies on the read
// loop for its ACKs from the start.
func TestSendWithoutReceive(t *testing.T) {
	checkNoLeak(t)
	var total atomic.Int64
	handler := func(_ context.Context, _ *Conn, m []byte) { total.Add(int64(len(m))) }
	// Close must wait for every byte to be acknowledged: the default 2 s linger is less
	// than 24 MiB takes under -race on a loaded machine (the test then lost the tail).
	_, c, s := pair(t, Config{OnMessage: handler}, Config{Linger: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	chunk := make([]byte, 1<<20)
	for i := range 48 {
		if err := c.Send(ctx, chunk); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// Close returned once everything was acknowledged; the handler runs right after the
	// ACKs leave.
	for total.Load() < 48<<20 && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	if got := total.Load(); got != 48<<20 {
		t.Fatalf("server got %d bytes, want %d (client %+v, server %+v)", got, 48<<20, c.Stats(), s.Stats())
	}
}

// Close from an application goroutine while OnMessage runs for the same connection still
// lingers (the unacknowledged data arrives) and, on a dialled Conn, waits for the read loop.
func TestCloseWhileHandlerRuns(t *testing.T) {
	started := make(chan struct{})
	var finished atomic.Bool
	handler := func(ctx context.Context, c *Conn, m []byte) {
		close(started)
		time.Sleep(300 * time.Millisecond) // some work (a map update, a log write under load...)
		finished.Store(true)
	}
	_, c, s := pair(t, Config{}, Config{OnMessage: handler})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Send(ctx, []byte("x")); err != nil {
		t.Fatal(err)
	}
	<-started
	big := make([]byte, 1<<20)
	if err := c.Send(ctx, big); err != nil {
		t.Fatal(err)
	}
	c.Close() // should linger until the 1 MiB is acknowledged (Linger 2 s)
	if !finished.Load() {
		t.Errorf("Close returned while the read loop was still running OnMessage")
	}
	m, err := s.Receive(ctx)
	if err != nil || len(m) != len(big) {
		t.Errorf("server: %d bytes, %v; want the 1 MiB message Close should have lingered for", len(m), err)
	}
}

// Listener.Close from OnMessage returns (it must not wait for the read loop, its caller).
func TestListenerCloseFromHandler(t *testing.T) {
	var l atomic.Pointer[Listener]
	returned := make(chan struct{})
	handler := func(ctx context.Context, c *Conn, m []byte) {
		l.Load().Close()
		close(returned)
	}
	l2, c, _ := pair(t, Config{OnMessage: handler}, Config{})
	l.Store(l2)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.Send(ctx, []byte("shutdown"))
	select {
	case <-returned:
	case <-time.After(3 * time.Second):
		t.Errorf("Listener.Close from OnMessage did not return in 3 s")
	}
}

// OnMessage for connection A closes connection B of the same listener: B's Close must not
// linger on the listener's read loop, the only reader of B's ACKs (it would wait the whole
// Linger, and every connection of the listener would stall meanwhile).
func TestHandlerClosesOtherConn(t *testing.T) {
	var other atomic.Pointer[Conn]
	var took atomic.Int64
	handler := func(ctx context.Context, c *Conn, m []byte) {
		if string(m) != "close-other" {
			c.Send(ctx, m)
			return
		}
		b := other.Load()
		b.Send(ctx, make([]byte, 256<<10))
		t0 := time.Now()
		b.Close()
		took.Store(int64(time.Since(t0)))
	}
	l, c1, s1 := pair(t, Config{OnMessage: handler, Linger: time.Second}, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c2, err := Dial(ctx, l.Addr().String(), l.PublicKey(), Config{PrivateKey: mustKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.Send(ctx, []byte("hello"))
	if _, err := c2.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	s2, err := l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s2 == s1 {
		t.Fatal("same conn")
	}
	other.Store(s2)
	c1.Send(ctx, []byte("close-other"))
	c1.Send(ctx, []byte("echo"))
	t0 := time.Now()
	if _, err := c1.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d > 500*time.Millisecond {
		t.Errorf("echo on conn A took %v: B.Close() in A's handler lingered %v on the read loop", d, time.Duration(took.Load()))
	}
}

// A Receive that gives up while the read loop holds the read token must not leave a
// request behind: the read loop would give the token to nobody after its next batch, and
// packets would wait in the socket for the lend timer.
func TestAbandonedReceiveLeavesNoWaiter(t *testing.T) {
	_, c, s := pair(t, Config{}, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	time.Sleep(10 * time.Millisecond) // the read loop is blocked in its read, holding the token
	short, sc := context.WithTimeout(ctx, 5*time.Millisecond)
	c.Receive(short)
	sc()
	if n := c.ep.lend.waiters.Load(); n != 0 {
		t.Fatalf("%d waiters registered after the Receive returned", n)
	}
	s.SendDatagram([]byte("d"))
	if _, err := c.ReceiveDatagram(ctx); err != nil {
		t.Fatal(err)
	}
	if n := c.ep.lend.lends.Load(); n != 0 {
		t.Fatalf("the read loop gave the read token up %d times with nobody waiting for it", n)
	}
}

// A handler's Send on a connection of another endpoint (a dialled upstream) whose send
// buffer is full returns ErrSendBufferFull too: waiting would stall the handler's
// listener, and could deadlock two that relay to each other.
func TestHandlerSendOnOtherEndpoint(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	stall := func(ctx context.Context, c *Conn, m []byte) { <-release } // upstream stops ACKing
	_, d, _ := pair(t, Config{OnMessage: stall}, Config{SendBuffer: 64 << 10})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Send(ctx, []byte("stall")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	res := make(chan error, 1)
	handler := func(hctx context.Context, c *Conn, m []byte) {
		var err error
		for i := 0; i < 16 && err == nil; i++ {
			err = d.Send(hctx, make([]byte, 16<<10))
		}
		res <- err
	}
	_, c1, _ := pair(t, Config{OnMessage: handler}, Config{})
	if err := c1.Send(ctx, []byte("go")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-res:
		if !errors.Is(err, ErrSendBufferFull) {
			t.Fatalf("handler's Send: %v, want ErrSendBufferFull", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("handler blocked in Send on another endpoint's connection: its listener's read loop is stalled")
	}
}

// A handler that closes a dialled upstream with unacknowledged data does not linger on its
// listener's read loop.
func TestHandlerClosesOtherEndpointConn(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	stall := func(ctx context.Context, c *Conn, m []byte) { <-release }
	_, d, _ := pair(t, Config{OnMessage: stall}, Config{Linger: 2 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d.Send(ctx, []byte("stall"))
	time.Sleep(50 * time.Millisecond)
	d.Send(ctx, []byte("unacked"))
	took := make(chan time.Duration, 1)
	handler := func(hctx context.Context, c *Conn, m []byte) {
		t0 := time.Now()
		d.Close()
		took <- time.Since(t0)
	}
	_, c1, _ := pair(t, Config{OnMessage: handler}, Config{})
	c1.Send(ctx, []byte("go"))
	if d := <-took; d > 500*time.Millisecond {
		t.Errorf("Close of another endpoint's conn from OnMessage lingered %v on the listener's read loop", d)
	}
}
