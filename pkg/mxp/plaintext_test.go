package mxp

import (
	"bytes"
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

func TestPlaintextConn(t *testing.T) {
	srv, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := DialPlaintext(ctx, srv.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	if c.LocalAddr() == nil || c.RemoteAddr().String() != srv.LocalAddr().String() {
		t.Fatalf("addresses %v -> %v", c.LocalAddr(), c.RemoteAddr())
	}
	// A Call and its answer, correlated by message id; garbage before it is skipped.
	answered := make(chan error, 1)
	go func() {
		r, err := c.Call(ctx, &Frame{Type: TypeCall, MessageID: 7, Payload: []byte("hi")})
		if err == nil && (r.Type != TypeResponse || !bytes.Equal(r.Payload, []byte("ok"))) {
			err = errors.New("wrong answer " + r.Type.String())
		}
		answered <- err
	}()
	buf := make([]byte, 2048)
	n, from, err := srv.ReadFromUDP(buf)
	if err != nil {
		t.Fatal(err)
	}
	f, _, err := Decode(buf[:n])
	if err != nil || f.MessageID != 7 || string(f.Payload) != "hi" {
		t.Fatalf("server got %+v, %v", f, err)
	}
	if _, err := srv.WriteToUDP([]byte("garbage"), from); err != nil {
		t.Fatal(err)
	}
	reply, _ := AppendFrame(nil, &Frame{Type: TypeResponse, MessageID: 7, Payload: []byte("ok")})
	if _, err := srv.WriteToUDP(reply, from); err != nil {
		t.Fatal(err)
	}
	if err := <-answered; err != nil {
		t.Fatal(err)
	}
	// A frame that answers nothing goes to Receive.
	event, _ := AppendFrame(nil, &Frame{Type: TypeEvent, MessageID: 8, Payload: []byte("ev")})
	if _, err := srv.WriteToUDP(event, from); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Receive(ctx); err != nil || got.MessageID != 8 || string(got.Payload) != "ev" {
		t.Fatalf("Receive = %+v, %v", got, err)
	}
	// Oversize frames are refused before sending.
	big := &Frame{Type: TypeCall, Payload: make([]byte, MaxPlaintextFrame)}
	if err := c.Send(ctx, big); ErrorCodeFor(err) != CodeTooLarge {
		t.Fatalf("oversize: %v", err)
	}
	// A cancelled context ends a read; the connection still works after it.
	rctx, rcancel := context.WithCancel(ctx)
	rcancel()
	if _, err := c.Receive(rctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled read: %v", err)
	}
	if _, err := srv.WriteToUDP(event, from); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Receive(ctx); err != nil || got.MessageID != 8 {
		t.Fatalf("read after a cancelled read: %+v, %v", got, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Receive(ctx); !errors.Is(err, ErrConnClosed) {
		t.Fatalf("read after close: %v", err)
	}
	if _, err := c.Call(ctx, &Frame{Type: TypeCall}); !errors.Is(err, ErrConnClosed) {
		t.Fatalf("call after close: %v", err)
	}
}
