package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
)

// freeAddr returns a loopback TCP address nobody listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestNATSServesAndChecks(t *testing.T) {
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- execute(ctx, []string{"nats", "--listen", addr}, nil, &out, &errb) }()

	// Poll --check until the server answers (no timed assertion: bounded by the test timeout).
	for {
		var cout, cerr bytes.Buffer
		if execute(context.Background(), []string{"nats", "--check", addr, "--timeout", "1s"}, nil, &cout, &cerr) == 0 {
			if !strings.Contains(cout.String(), "ok") {
				t.Fatalf("check output %q", cout.String())
			}
			break
		}
		select {
		case code := <-done:
			t.Fatalf("nats exited early with %d: %s", code, errb.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("nats exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "listening on nats://") || !strings.Contains(out.String(), "stopped") {
		t.Fatalf("output %q", out.String())
	}
}

func TestNATSCheckFails(t *testing.T) {
	// A TCP server that is not NATS: it greets with something else.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("+PONG redis says hi\r\n"))
			c.Close()
		}
	}()
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"nothing listening", []string{"nats", "--check", freeAddr(t), "--timeout", "1s"}, 1, "connect"},
		{"not nats", []string{"nats", "--check", l.Addr().String(), "--timeout", "1s"}, 1, "not a NATS server"},
		{"bad listen", []string{"nats", "--listen", "nohostport"}, 2, "--listen"},
		{"bad port", []string{"nats", "--listen", "127.0.0.1:99999"}, 2, "bad port"},
		{"bad payload", []string{"nats", "--listen", "127.0.0.1:0", "--max-payload", "0"}, 2, "--max-payload"},
		{"arguments", []string{"nats", "extra"}, 2, "no arguments"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := execute(context.Background(), tc.args, nil, &out, &errb)
			if code != tc.code || !strings.Contains(errb.String(), tc.want) {
				t.Fatalf("exit %d (want %d), stderr %q (want %q)", code, tc.code, errb.String(), tc.want)
			}
		})
	}
}

// FuzzNATSHandshake feeds arbitrary server bytes to the health check's protocol reader: it
// must end (error or success) without panicking, and succeed only after INFO and PONG.
func FuzzNATSHandshake(f *testing.F) {
	f.Add([]byte("INFO {\"server_id\":\"x\"}\r\nPONG\r\n"))
	f.Add([]byte("INFO {}\r\n+OK\r\nPING\r\nPONG\r\n"))
	f.Add([]byte("INFO {}\r\n-ERR 'Authorization Violation'\r\n"))
	f.Add([]byte("+PONG\r\n"))
	f.Add([]byte("INFO " + strings.Repeat("x", maxNATSLine+10)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		client, server := net.Pipe()
		go func() {
			go io.Copy(io.Discard, server) // what the check writes
			server.Write(data)
			server.Close()
		}()
		client.SetDeadline(time.Now().Add(2 * time.Second))
		err := natsHandshake(client, "fuzz")
		client.Close()
		if err == nil && (!bytes.HasPrefix(data, []byte("INFO ")) || !bytes.Contains(data, []byte("\nPONG"))) {
			t.Fatalf("accepted %q", data)
		}
	})
}

// BenchmarkNATSCheck is the cost of one `mxp nats --check` round (dial, INFO, CONNECT,
// PING, PONG) against the embedded server on loopback: what a health check every 2s costs.
func BenchmarkNATSCheck(b *testing.B) {
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Shutdown()
	addr := strings.TrimPrefix(srv.ClientURL(), "nats://")
	ctx := context.Background()
	for b.Loop() {
		if err := checkNATS(ctx, addr, 5*time.Second); err != nil {
			b.Fatal(err)
		}
	}
}
