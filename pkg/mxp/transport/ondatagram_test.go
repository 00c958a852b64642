package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// OnDatagram receives each datagram on the read loop, ReceiveDatagram says where they went,
// messages still go to Receive (the two handlers are independent), a Send from the handler
// reaches the peer, and the budget charged for the datagrams comes back.
func TestOnDatagramOnReadLoop(t *testing.T) {
	checkNoLeak(t)
	type got struct {
		msg    []byte
		onLoop bool
		ctxErr error
	}
	gotc := make(chan got, 1)
	handler := func(ctx context.Context, c *Conn, m []byte) {
		gotc <- got{m, c.ep.onReadLoop(), ctx.Err()}
		c.Send(ctx, append([]byte("echo:"), m...)) // from the read loop: must not wait
	}
	l, c, s := pair(t, Config{OnDatagram: handler}, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := s.ReceiveDatagram(ctx); !errors.Is(err, ErrOnDatagram) {
		t.Fatalf("ReceiveDatagram with OnDatagram set: %v, want ErrOnDatagram", err)
	}
	for i := range 200 {
		want := fmt.Appendf(nil, "datagram %d", i)
		// One at a time, each answered before the next: nothing is lost on loopback.
		if err := c.SendDatagram(want); err != nil {
			t.Fatal(err)
		}
		g := <-gotc
		if !bytes.Equal(g.msg, want) || !g.onLoop || g.ctxErr != nil {
			t.Fatalf("datagram %d: got %q on the read loop %v, ctx %v", i, g.msg, g.onLoop, g.ctxErr)
		}
		echo, err := c.Receive(ctx)
		if err != nil || !bytes.Equal(echo, append([]byte("echo:"), want...)) {
			t.Fatalf("echo %d: %q, %v", i, echo, err)
		}
	}
	// Reliable messages are not the handler's: they wait for Receive.
	if err := c.Send(ctx, []byte("reliable")); err != nil {
		t.Fatal(err)
	}
	if m, err := s.Receive(ctx); err != nil || string(m) != "reliable" {
		t.Fatalf("Receive beside OnDatagram: %q, %v", m, err)
	}
	if st := l.Stats(); st.RecvHeld != 0 || st.DatagramsDroppedIn != 0 {
		t.Fatalf("after the datagrams: RecvHeld %d, DatagramsDroppedIn %d; want 0, 0", st.RecvHeld, st.DatagramsDroppedIn)
	}
}

// A Send from OnDatagram that finds the send buffer full gets ErrSendBufferFull at once
// instead of blocking the goroutine that must read the ACKs which would free it; so does a
// dialled Conn's handler, whose Receive then still works (the read loop reads for it).
func TestOnDatagramSendDoesNotBlock(t *testing.T) {
	checkNoLeak(t)
	type result struct {
		sent int
		err  error
	}
	results := make(chan result, 2)
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
	_, c, s := pair(t, Config{OnDatagram: handler}, Config{OnDatagram: handler})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, from := range []*Conn{c, s} {
		if err := from.SendDatagram([]byte("go")); err != nil {
			t.Fatal(err)
		}
		var r result
		select {
		case r = <-results:
		case <-ctx.Done():
			t.Fatal("the handler blocked in Send")
		}
		if !errors.Is(r.err, ErrSendBufferFull) || r.sent == 0 {
			t.Fatalf("handler sent %d messages, then %v; want some, then ErrSendBufferFull", r.sent, r.err)
		}
		for i := range r.sent { // the connection still works: the sender of "go" gets them
			m, err := from.Receive(ctx)
			if err != nil || len(m) != len(big) {
				t.Fatalf("to the client %v: message %d: %d bytes, %v", from == c, i, len(m), err)
			}
		}
	}
}

// FuzzOnDatagram: whatever the datagrams (sizes 0..MaxDatagramSize, any bytes), OnDatagram
// gets each one intact, and the receive budget they were charged is all given back.
func FuzzOnDatagram(f *testing.F) {
	f.Add([]byte{3, 'a', 'b', 'c', 0, 5, 1, 2, 3, 4, 5})
	f.Add(bytes.Repeat([]byte{0xff}, 4000))
	got := make(chan []byte, 64)
	l, c, _ := pair(f, Config{OnDatagram: func(_ context.Context, _ *Conn, m []byte) { got <- m }}, Config{})
	f.Fuzz(func(t *testing.T, b []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		// b is a sequence of (length byte × 8, bytes) pieces, up to 16 datagrams.
		for n := 0; len(b) > 0 && n < 16; n++ {
			size := min(int(b[0])*8, len(b)-1, c.MaxDatagramSize())
			d := b[1 : 1+size]
			b = b[1+size:]
			if err := c.SendDatagram(d); err != nil {
				t.Fatal(err)
			}
			// One at a time: each is handled before the next leaves, so none is lost.
			select {
			case m := <-got:
				if !bytes.Equal(m, d) {
					t.Fatalf("datagram %d: got %x, want %x", n, m, d)
				}
			case <-ctx.Done():
				t.Fatalf("datagram %d of %d bytes never reached OnDatagram", n, len(d))
			}
		}
		if held := l.Stats().RecvHeld; held != 0 {
			t.Fatalf("%d bytes still charged after every datagram was handled", held)
		}
	})
}
