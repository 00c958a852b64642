package registry

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/common/health"
	"github.com/mxp-mesh/mesh/pkg/common/service"
)

// TestNewDoesNoIO: New builds the registry without serving (a request finds no responder
// and readiness is false) and without contacting its store (an unreachable Redis fails
// Run, not New); Run serves, and readiness follows.
func TestNewDoesNoIO(t *testing.T) {
	b, err := bus.Start(bus.Config{Embedded: bus.EmbeddedConfig{DontListen: true}}, "client", quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	nc, err := b.NewConn("registry")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	checker := health.NewChecker(nil)
	svc, err := New(DefaultConfig(), service.Deps{Conn: nc, Logger: quiet, Health: checker})
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"id":"6ba7b810-9dad-11d1-80b4-00c04fd430c8","name":"n","capabilities":["c"]}`)
	if _, err := b.Conn.Request(bus.SubjectRegistryRegister, body, 2*time.Second); !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("request before Run: %v, want no responders", err)
	}
	if checker.Ready(context.Background()).Ready {
		t.Fatal("ready before Run")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	select {
	case <-svc.Serving():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	if _, err := b.Conn.Request(bus.SubjectRegistryRegister, body, 5*time.Second); err != nil {
		t.Fatalf("request after Serving: %v", err)
	}
	if rep := checker.Ready(context.Background()); !rep.Ready {
		t.Fatalf("not ready while serving: %+v", rep)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// An unreachable Redis: New succeeds (no I/O), Run fails naming the store.
	cfg := DefaultConfig()
	cfg.Store = "redis://127.0.0.1:1/0"
	svc, err = New(cfg, service.Deps{Conn: nc, Logger: quiet})
	if err != nil {
		t.Fatalf("New with an unreachable store: %v", err)
	}
	if err := svc.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "redis store") {
		t.Fatalf("Run with an unreachable store: %v", err)
	}
}
