package transport

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

func TestRekeyWithoutInterruptingTraffic(t *testing.T) {
	checkNoLeak(t)
	cfg := Config{RekeyAfter: 150 * time.Millisecond, RejectAfter: 10 * time.Second}
	_, c, s := pair(t, cfg, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	deadline := time.Now().Add(700 * time.Millisecond)
	i := 0
	for time.Now().Before(deadline) {
		msg := []byte{byte(i), byte(i >> 8)}
		if err := c.Send(ctx, msg); err != nil {
			t.Fatal(err)
		}
		got, err := s.Receive(ctx)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("message %d during rekeys: %v", i, err)
		}
		i++
		time.Sleep(5 * time.Millisecond)
	}
	if r := c.Stats().Rekeys; r < 3 {
		t.Fatalf("only %d handshakes in 700 ms with RekeyAfter 150 ms", r)
	}
}

func TestDatagrams(t *testing.T) {
	_, c, s := pair(t, Config{}, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.SendDatagram(make([]byte, c.MaxDatagramSize()+1)); !errors.Is(err, ErrDatagramTooLarge) {
		t.Fatalf("oversize datagram: %v", err)
	}
	want := bytes.Repeat([]byte("d"), c.MaxDatagramSize())
	if err := c.SendDatagram(want); err != nil {
		t.Fatal(err)
	}
	got, err := s.ReceiveDatagram(ctx)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("datagram: %v", err)
	}
}

func TestIdleTimeoutAndKeepalive(t *testing.T) {
	checkNoLeak(t)
	// The client keeps the connection alive with PINGs every 50 ms; the server would
	// time out after 300 ms of silence.
	_, c, s := pair(t, Config{IdleTimeout: 300 * time.Millisecond, KeepaliveInterval: time.Hour},
		Config{KeepaliveInterval: 50 * time.Millisecond})
	time.Sleep(600 * time.Millisecond)
	if err := s.Err(); err != nil {
		t.Fatalf("keepalives did not keep the connection: %v", err)
	}
	// Now silence the client entirely: close it without telling the server.
	c.mu.Lock()
	c.closeLocked(&CloseError{Reason: "vanish"}, false)
	c.mu.Unlock()
	<-c.ep.done
	select {
	case <-s.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("no idle timeout")
	}
	if !errors.Is(s.Err(), ErrIdleTimeout) {
		t.Fatalf("closed with %v", s.Err())
	}
}

func TestFlowControlBoundsSender(t *testing.T) {
	_, c, s := pair(t, Config{}, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Nobody reads on s: the client may queue at most SendBuffer before Send blocks.
	msg := make([]byte, 4<<20)
	sent := 0
	for {
		short, c2 := context.WithTimeout(ctx, 500*time.Millisecond)
		err := c.Send(short, msg)
		c2()
		if err != nil {
			break
		}
		sent++
		if sent > 20 {
			t.Fatal("Send never blocked for a receiver that does not read")
		}
	}
	if sent*len(msg) > DefaultSendBuffer+DefaultRecvWindow {
		t.Fatalf("%d MiB accepted", sent*4)
	}
	for range sent {
		if _, err := s.Receive(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPeerBreakingFlowControlIsClosed(t *testing.T) {
	_, c, s := pair(t, Config{}, Config{})
	// Forge a STREAM frame far beyond the advertised window, sealed with the real keys.
	c.mu.Lock()
	c.snd.maxData = 1 << 40
	c.snd.push(make([]byte, 10))
	c.snd.sendOff = DefaultRecvWindow + 100 // pretend the window was already used
	c.snd.writeOff = c.snd.sendOff + 11
	c.snd.chunks[0].off = c.snd.sendOff
	c.flushLocked(time.Now())
	c.mu.Unlock()
	select {
	case <-s.Done():
	case <-time.After(3 * time.Second):
		t.Fatal("the server kept a connection that broke flow control")
	}
	var ce *CloseError
	if !errors.As(s.Err(), &ce) || ce.Code != CloseFlowControl {
		t.Fatalf("closed with %v", s.Err())
	}
}
