package bus

import (
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// TestReconnectAfterServerRestart: a connection to an external URL survives the server
// going away and coming back on the same address, and its subscriptions resume.
func TestReconnectAfterServerRestart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	srv, err := StartEmbedded(EmbeddedConfig{Port: port})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Connect(Config{URL: srv.ClientURL(), ReconnectWait: 10 * time.Millisecond, MaxReconnectWait: 50 * time.Millisecond}, "survivor", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	sub, err := b.Conn.SubscribeSync("ping")
	if err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()
	srv, err = StartEmbedded(EmbeddedConfig{Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	deadline := time.Now().Add(10 * time.Second)
	for b.Conn.Status() != nats.CONNECTED {
		if time.Now().After(deadline) {
			t.Fatalf("not reconnected: %v", b.Conn.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
	other, err := srv.Connect("other")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	// The resubscription reaches the server shortly after the reconnect.
	for {
		other.Publish("ping", []byte("x"))
		other.Flush()
		if _, err := sub.NextMsg(50 * time.Millisecond); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("subscription did not resume after reconnect")
		}
	}
	if b.Conn.Reconnects == 0 {
		t.Fatal("reconnect not counted")
	}
}
