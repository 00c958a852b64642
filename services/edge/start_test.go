package edge

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/mxp-mesh/mesh/pkg/common/service"
)

// TestNewDoesNoIO: New on ports another socket holds, with a key file that does not
// exist, succeeds and touches neither (no key file is created, the ports stay the
// holder's); Run then reports the bind as a *ListenError wrapping EADDRINUSE, never
// closes Serving, and stays not ready. On the old code New bound the sockets and failed.
func TestNewDoesNoIO(t *testing.T) {
	held, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	nc, err := testBus(t).NewConn("edge")
	if err != nil {
		t.Fatal(err)
	}
	deps := service.Deps{Conn: nc, Logger: slog.New(slog.DiscardHandler)}.WithDefaults("edge")
	for _, tc := range []struct {
		name, transport string
		cfg             Config
	}{
		{"secure", "secure", Config{Addr: held.LocalAddr().String()}},
		{"compat", "compat", Config{Addr: "off", CompatAddr: held.LocalAddr().String()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keyFile := filepath.Join(t.TempDir(), "edge.key")
			tc.cfg.KeyFile = keyFile
			deps.Health, deps.Metrics = nil, nil // each edge registers its own checks and metrics
			deps = deps.WithDefaults("edge")
			e, err := New(tc.cfg, Deps{Deps: deps})
			if err != nil {
				t.Fatalf("New on a held port: %v (New must not bind)", err)
			}
			if _, err := os.Stat(keyFile); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("New touched the key file: stat = %v", err)
			}
			if len(e.Addrs()) != 0 || e.PublicKey() != "" {
				t.Fatalf("before Run: Addrs %v, PublicKey %q; want none", e.Addrs(), e.PublicKey())
			}
			err = e.Run(context.Background())
			var le *ListenError
			if !errors.As(err, &le) || le.Transport != tc.transport || le.Addr != held.LocalAddr().String() {
				t.Fatalf("Run = %v; want a *ListenError for the %s transport on %s", err, tc.transport, held.LocalAddr())
			}
			if !errors.Is(err, syscall.EADDRINUSE) {
				t.Fatalf("Run = %v; want it to wrap EADDRINUSE", err)
			}
			select {
			case <-e.Serving():
				t.Fatal("Serving closed although nothing was bound")
			default:
			}
			if rep := deps.Health.Ready(context.Background()); rep.Ready {
				t.Fatalf("ready after a failed bind: %+v", rep)
			}
		})
	}
}

// TestRunBindsThenServing: Serving closes once Run has bound the secure transport and
// created the key file; Addrs and PublicKey then name them.
func TestRunBindsThenServing(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "edge.key")
	nc, err := testBus(t).NewConn("edge")
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{Addr: "127.0.0.1:0", KeyFile: keyFile}, Deps{Deps: service.Deps{Conn: nc, Logger: slog.New(slog.DiscardHandler)}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	select {
	case <-e.Serving():
	case err := <-done:
		t.Fatalf("Run returned before serving: %v", err)
	}
	if _, err := os.Stat(keyFile); err != nil {
		t.Fatalf("key file after Serving: %v", err)
	}
	if e.Addrs()["secure"] == "" || e.PublicKey() == "" {
		t.Fatalf("after Serving: Addrs %v, PublicKey %q", e.Addrs(), e.PublicKey())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
}
