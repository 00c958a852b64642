package transport

import (
	"context"
	"errors"
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// deadPeerWait bounds the wait for a dead-peer close in these tests: far above the 2 s
// default DeadPeerTimeout (plus a probe interval), far below the 30 s idle timeout that
// closed such connections before liveness.
const deadPeerWait = 15 * time.Second

// waitClosed waits for c to close, or fails after deadPeerWait, and returns c.Err().
func waitClosed(t *testing.T, c *Conn, what string) error {
	t.Helper()
	start := time.Now()
	select {
	case <-c.Done():
	case <-time.After(deadPeerWait):
		t.Fatalf("%s: the connection to a vanished peer is still open after %v", what, deadPeerWait)
	}
	t.Logf("%s: closed %v after the peer vanished: %v", what, time.Since(start).Round(time.Millisecond), c.Err())
	return c.Err()
}

// A peer that vanishes silently (every packet to it lost, as when its host dies) is
// declared dead from the transport's own traffic: with a message unacknowledged; with
// nothing in flight while the application awaits an answer (the peer acknowledged the
// request, then died); and on an idle connection, by its unanswered keepalive.
func TestDeadPeerFailsFast(t *testing.T) {
	for _, tc := range []struct {
		name      string
		await     bool
		idle      bool
		keepalive time.Duration
	}{
		{name: "unacknowledged message"},
		{name: "awaited answer, nothing in flight", await: true},
		{name: "idle, keepalive unanswered", idle: true, keepalive: 200 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, sn, c, s := sniffedPairCfg(t, Config{}, Config{KeepaliveInterval: tc.keepalive})
			ctx, cancel := context.WithTimeout(context.Background(), 2*deadPeerWait)
			defer cancel()
			if err := c.Send(ctx, []byte("request")); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Receive(ctx); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the request's acknowledgement", func() bool { return c.Stats().BytesInFlight == 0 })
			sn.hold.Store(true) // from now on the peer hears nothing, and so says nothing
			switch {
			case tc.idle: // nothing more: the next keepalive goes unanswered
			case tc.await:
				c.Await()
				defer c.EndAwait()
			default:
				if err := c.Send(ctx, []byte("into the void")); err != nil {
					t.Fatal(err)
				}
			}
			err := waitClosed(t, c, tc.name)
			if !errors.Is(err, ErrPeerUnreachable) || !errors.Is(err, ErrClosed) {
				t.Fatalf("close reason %v, want ErrPeerUnreachable", err)
			}
			if !c.Stats().DeadPeer {
				t.Fatal("Stats().DeadPeer not set")
			}
			if _, err := c.Receive(ctx); !errors.Is(err, ErrPeerUnreachable) {
				t.Fatalf("Receive after the dead-peer close: %v", err)
			}
		})
	}
}

// An idle connection with nothing awaited is not probed: DeadPeerTimeout costs idle
// peers no packets beyond their keepalives. Awaiting, the live peer answers the probes
// and the connection stays open.
func TestIdleConnectionNotProbed(t *testing.T) {
	_, c, s := pair(t, Config{}, Config{DeadPeerTimeout: 40 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Send(ctx, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the acknowledgement", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.cc.inFlight == 0 && c.unanswered.IsZero()
	})
	c.mu.Lock()
	idle := c.livenessDeadlineLocked()
	c.mu.Unlock()
	if !idle.IsZero() {
		t.Fatalf("an idle connection with nothing awaited has a liveness deadline (%v): it would probe", idle)
	}
	before := c.Stats().PacketsSent
	c.Await()
	c.mu.Lock()
	awaiting := c.livenessDeadlineLocked()
	c.mu.Unlock()
	if awaiting.IsZero() {
		t.Fatal("an awaiting connection has no probe deadline")
	}
	waitFor(t, "three probes", func() bool { return c.Stats().PacketsSent-before >= 3 })
	c.EndAwait()
	if c.Err() != nil {
		t.Fatalf("a probed live peer was declared dead: %v", c.Err())
	}
}

// A dial to an address where nothing listens fails at once with a clear error (the
// connected socket's ICMP port unreachable), not after the handshake timeout.
func TestDialRefusedFailsFast(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("ICMP errors on connected UDP sockets are reported on Linux")
	}
	checkNoLeak(t)
	u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := u.LocalAddr().String()
	u.Close() // nothing listens there now
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	_, err = Dial(ctx, addr, mustKey(t).PublicKey(), Config{PrivateKey: mustKey(t)})
	t.Logf("dial of a dead address failed after %v: %v", time.Since(start).Round(time.Microsecond), err)
	if !errors.Is(err, ErrPeerUnreachable) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial of a dead address: %v, want ErrPeerUnreachable (connection refused)", err)
	}
}

// BenchmarkAwait is the cost a request pays for liveness: one Await/EndAwait pair that
// takes the count from zero (the lock and the timer check) and back.
func BenchmarkAwait(b *testing.B) {
	_, c, _ := pair(b, Config{}, Config{})
	for b.Loop() {
		c.Await()
		c.EndAwait()
	}
}
