package transport

import (
	"context"
	"testing"
	"time"
)

// TestReceiveReadingSocketEndsOnClose checks that a Receive that reads the socket itself
// (the read turn lent to it, on either side) returns when its connection closes, also on a
// listener whose socket stays open, and that the other side still exchanges messages.
func TestReceiveReadingSocketEndsOnClose(t *testing.T) {
	for _, side := range []string{"listener", "dialled"} {
		t.Run(side, func(t *testing.T) {
			// Keepalives far apart, so that only the close can end a waiting socket read.
			cfg := Config{KeepaliveInterval: time.Minute, IdleTimeout: 2 * time.Minute}
			_, c, s := pair(t, cfg, cfg)
			ctx := context.Background()
			waiter, other := s, c
			if side == "dialled" {
				waiter, other = c, s
			}
			for range 20 { // request/response traffic: the read turn is lent to waiter
				if err := other.Send(ctx, []byte("ping")); err != nil {
					t.Fatal(err)
				}
				if _, err := waiter.Receive(ctx); err != nil {
					t.Fatal(err)
				}
			}
			errc := make(chan error, 1)
			go func() {
				_, err := waiter.Receive(ctx)
				errc <- err
			}()
			time.Sleep(10 * time.Millisecond) // let it block (in the socket read if lent)
			waiter.closeNow(&CloseError{Code: CloseNormal, Reason: "test"}, false)
			select {
			case err := <-errc:
				if err == nil {
					t.Fatalf("Receive after close: %v", err)
				}
			case <-time.After(30 * time.Second): // a hang guard, not a timing assertion
				t.Fatal("Receive did not return after Close")
			}
		})
	}
}

// TestReadTurnServesManyMessages checks that request/response traffic with the read turn
// lent delivers every message intact and in order, and that the turn is in use.
func TestReadTurnServesManyMessages(t *testing.T) {
	_, c, s := pair(t, Config{}, Config{})
	ctx := context.Background()
	go func() {
		for {
			m, err := s.Receive(ctx)
			if err != nil {
				return
			}
			if s.Send(ctx, m) != nil {
				return
			}
		}
	}()
	for i := range 500 {
		msg := []byte{byte(i), byte(i >> 8), 7}
		if err := c.Send(ctx, msg); err != nil {
			t.Fatal(err)
		}
		got, err := c.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(msg) {
			t.Fatalf("message %d: got %x, want %x", i, got, msg)
		}
	}
}
