package agent

import (
	"bytes"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

func TestPlaintextConn(t *testing.T) {
	srv, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fc, err := DialPlaintext(ctx, srv.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	if err := fc.Send(ctx, &mxp.Frame{Type: mxp.TypeCall, MessageID: 7, Payload: []byte("hi")}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	n, from, err := srv.ReadFromUDP(buf)
	if err != nil {
		t.Fatal(err)
	}
	f, _, err := mxp.Decode(buf[:n])
	if err != nil || f.MessageID != 7 || string(f.Payload) != "hi" {
		t.Fatalf("server got %+v, %v", f, err)
	}
	// Garbage is skipped; the next valid frame is returned.
	if _, err := srv.WriteToUDP([]byte("garbage"), from); err != nil {
		t.Fatal(err)
	}
	reply, _ := mxp.AppendFrame(nil, &mxp.Frame{Type: mxp.TypeResponse, MessageID: 7, Payload: []byte("ok")})
	if _, err := srv.WriteToUDP(reply, from); err != nil {
		t.Fatal(err)
	}
	got, err := fc.Receive(ctx)
	if err != nil || got.Type != mxp.TypeResponse || !bytes.Equal(got.Payload, []byte("ok")) {
		t.Fatalf("Receive = %+v, %v", got, err)
	}
	// Oversize frames are refused before sending.
	big := &mxp.Frame{Type: mxp.TypeCall, Payload: make([]byte, MaxPlaintextFrame)}
	if err := fc.Send(ctx, big); CodeOf(err) != CodeTooLarge {
		t.Fatalf("oversize: %v", err)
	}
	// A cancelled context unblocks a read; Close ends the connection.
	rctx, rcancel := context.WithCancel(ctx)
	go func() { time.Sleep(10 * time.Millisecond); rcancel() }()
	if _, err := fc.Receive(rctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled read: %v", err)
	}
	// The connection still works after a cancelled read.
	if _, err := srv.WriteToUDP(reply, from); err != nil {
		t.Fatal(err)
	}
	if got, err := fc.Receive(ctx); err != nil || got.MessageID != 7 {
		t.Fatalf("read after a cancelled read: %+v, %v", got, err)
	}
	if err := fc.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := fc.Receive(ctx); err == nil {
		t.Fatal("read after close")
	}
}
