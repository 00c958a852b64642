package transport

import (
	"context"
	"testing"
	"time"
)

// TestSlowHandlerDataAcknowledged is the review's slow-handler scenario (issue 15
// follow-up): a Listener's OnMessage that blocks must not hold back the ACK of the data
// it handles. Before the fix the delayed-ACK timer was armed only after the handler
// returned, so the sender saw its message unanswered for as long as the handler ran and
// declared the live listener dead after DeadPeerTimeout (here 300 ms, with a handler
// blocked until the test releases it: on the old code the sender closes first).
func TestSlowHandlerDataAcknowledged(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	l, err := Listen(context.Background(), "127.0.0.1:0", Config{PrivateKey: mustKey(t),
		OnMessage: func(ctx context.Context, c *Conn, m []byte) {
			entered <- struct{}{}
			<-release
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	defer close(release)
	c, err := Dial(context.Background(), l.Addr().String(), l.PublicKey(),
		Config{PrivateKey: mustKey(t), DeadPeerTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Send(context.Background(), []byte("slow")); err != nil {
		t.Fatal(err)
	}
	<-entered
	// The handler now blocks the listener's read loop. The sender's data must still be
	// acknowledged; the sender must not close.
	select {
	case <-c.Done():
		t.Fatalf("the sender declared a live listener dead while its handler ran: %v", c.Err())
	case <-acknowledged(c):
	}
	if err := c.Err(); err != nil {
		t.Fatalf("sender closed: %v", err)
	}
}

// acknowledged is closed once nothing c sent is in flight (or c closed).
func acknowledged(c *Conn) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		for c.Stats().BytesInFlight > 0 && c.Err() == nil {
			time.Sleep(time.Millisecond)
		}
	}()
	return ch
}

// TestDeadPeerTimeoutFloor: the dead-peer timeout is never shorter than DeadPeerPTOs
// retransmission timeouts, so a path whose round trip is 1.5 s (RTO about 2 s) is not
// declared dead by the 2 s default; on a fast path it stays DeadPeerTimeout.
func TestDeadPeerTimeoutFloor(t *testing.T) {
	cfg := &Config{DeadPeerTimeout: DefaultDeadPeerTimeout}
	c := &Conn{cfg: cfg}
	c.rtt.init()
	c.rtt.update(time.Millisecond, 0)
	if got := c.deadPeerTimeoutLocked(); got != DefaultDeadPeerTimeout {
		t.Fatalf("fast path: timeout %v, want %v", got, DefaultDeadPeerTimeout)
	}
	for range 10 {
		c.rtt.update(1500*time.Millisecond, 0)
	}
	got, rto := c.deadPeerTimeoutLocked(), c.rtt.rto()
	if got < DeadPeerPTOs*rto || got <= 1500*time.Millisecond*DeadPeerPTOs {
		t.Fatalf("1.5 s round trip: timeout %v, want at least %d×RTO (%v)", got, DeadPeerPTOs, rto)
	}
}

// TestSlowHandlerOtherClientsLive is the other half of the review's scenario: while the
// handler of one client's message blocks the Listener's read loop, another client of the
// same Listener is still acknowledged (a helper reads the socket after HandlerStall), so
// it does not declare the Listener dead; its message is handled, in order, once the
// handler returns. On the old code nothing was read during the handler and the other
// client closed after its dead-peer timeout (300 ms here, the handler blocked until the
// test releases it).
func TestSlowHandlerOtherClientsLive(t *testing.T) {
	release := make(chan struct{})
	got := make(chan string, 4)
	l, err := Listen(context.Background(), "127.0.0.1:0", Config{PrivateKey: mustKey(t),
		OnMessage: func(ctx context.Context, c *Conn, m []byte) {
			got <- string(m)
			if string(m) == "slow" {
				<-release
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()
	dial := func() *Conn {
		c, err := Dial(context.Background(), l.Addr().String(), l.PublicKey(),
			Config{PrivateKey: mustKey(t), DeadPeerTimeout: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	slow, other := dial(), dial()
	defer slow.Close()
	defer other.Close()
	if err := slow.Send(context.Background(), []byte("slow")); err != nil {
		t.Fatal(err)
	}
	if m := <-got; m != "slow" {
		t.Fatalf("handler got %q first", m)
	}
	// The read loop is now blocked in the handler.
	if err := other.Send(context.Background(), []byte("hi")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-other.Done():
		t.Fatalf("another client declared the Listener dead while a handler blocked: %v", other.Err())
	case <-acknowledged(other):
	}
	if err := other.Err(); err != nil {
		t.Fatalf("other client closed: %v", err)
	}
	if n := l.Stats().HandlerStalls; n == 0 {
		t.Fatal("HandlerStalls = 0 after a stalled handler")
	}
	close(release)
	released = true
	if m := <-got; m != "hi" {
		t.Fatalf("after the stall the handler got %q, want hi", m)
	}
	if slow.Err() != nil || other.Err() != nil {
		t.Fatalf("connections closed: %v / %v", slow.Err(), other.Err())
	}
}

// TestStalledHandlerMessagesHandled: messages that the stall helper receives while a
// handler blocks are handled once it returns, even when the peer then sends nothing more.
// The read loop cleared their flag after the blocked handler returned, so they waited
// for the connection's next packet: with none, for ever (TestReceiveReadsSocketDirectly's
// hang: 855 echoes never sent).
func TestStalledHandlerMessagesHandled(t *testing.T) {
	const n = 20
	release := make(chan struct{})
	handled := make(chan []byte, n)
	_, c, s := pair(t, Config{OnMessage: func(ctx context.Context, c *Conn, m []byte) {
		if string(m) == "block" {
			<-release
		}
		handled <- m
	}}, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Send(ctx, []byte("block")); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < n; i++ {
		if err := c.Send(ctx, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	// The handler blocks the read loop; the helper takes over the reading and queues the
	// others without handling them.
	waitFor(t, "the messages queued behind the blocked handler", func() bool { return s.Stats().MessagesReceived == n })
	if len(handled) != 0 {
		t.Fatalf("%d handled while the read loop's handler blocks", len(handled))
	}
	close(release)
	for i := range n {
		select {
		case m := <-handled:
			if i > 0 && (len(m) != 1 || int(m[0]) != i) {
				t.Fatalf("handled %q as message %d", m, i)
			}
		case <-ctx.Done():
			t.Fatalf("%d of %d messages handled; the rest stayed queued", i, n)
		}
	}
}
