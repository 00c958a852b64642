package service

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/common/config"
	"github.com/mxp-mesh/mesh/pkg/common/lifecycle"
	"github.com/mxp-mesh/mesh/pkg/common/metrics"
	"github.com/mxp-mesh/mesh/pkg/common/security"
)

type baseTestCfg struct {
	Level string `yaml:"log_level" reload:"live"`
	Max   int    `yaml:"max" reload:"live"`
}

// TestBaseLifecycle runs a service the way a main does and shuts it down with a request
// in flight: the request is answered, readiness went false, the bus connection is
// drained and closed, HTTP stops, and config reloads moved the digest and the log level.
func TestBaseLifecycle(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	os.WriteFile(file, []byte("log_level: info\nmax: 1\n"), 0o600)
	b, err := NewBase(context.Background(), BaseConfig{
		Service: "demo", Version: "0.0.1", LogWriter: io.Discard,
		Bus:  bus.Config{Embedded: bus.EmbeddedConfig{DontListen: true}},
		HTTP: metrics.ServerConfig{Addr: "127.0.0.1:0"},
	})
	if err != nil {
		t.Fatal(err)
	}
	l := &config.Loader[baseTestCfg]{Service: "demo", File: file, Env: []string{}}
	initial, err := l.Load()
	if err != nil {
		t.Fatal(err)
	}
	w := WatchConfig(b, l, initial, func(c *baseTestCfg) string { return c.Level }, nil)
	d0 := w.Digest()

	ep, err := NewEndpoints(b.Deps(), micro.Config{Name: "demo", Version: "0.0.1"}, security.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	started, release := make(chan struct{}), make(chan struct{})
	ep.Handle("slow", "demo.slow", func(ctx context.Context, r Request) (any, error) {
		close(started)
		<-release
		return "finished", nil
	})
	svc := lifecycle.Func{N: "demo", F: func(ctx context.Context) error {
		<-ctx.Done()
		if !b.Health.ShuttingDown() {
			t.Error("readiness still true when intake stops")
		}
		dctx, cancel := lifecycle.DrainContext(ctx)
		defer cancel()
		return ep.Stop(dctx)
	}}
	r, err := b.Runner(svc)
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + b.HTTP.Addr()

	// A client on the same embedded server.
	client, err := b.Bus.NewConn("client")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	// Reload: live change moves the digest and the log level.
	os.WriteFile(file, []byte("log_level: debug\nmax: 2\n"), 0o600)
	if _, err := w.Reload(); err != nil {
		t.Fatal(err)
	}
	if w.Digest() == d0 || b.Level.Level().String() != "DEBUG" {
		t.Fatalf("reload not applied: digest %s level %s", w.Digest(), b.Level.Level())
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`mxp_config_info{digest="` + w.Digest() + `",service="demo"} 1`, `mxp_bus_connected{service="demo"} 1`, `mxp_bus_messages_total{direction="in",service="demo"}`} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("metric %s missing:\n%s", want, body)
		}
	}

	replyCh := make(chan string, 1)
	go func() {
		m, err := client.Request("demo.slow", nil, 10*time.Second)
		if err != nil {
			replyCh <- "error: " + err.Error()
			return
		}
		replyCh <- string(m.Data)
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("request never reached the handler")
	}
	cancel() // shutdown with the request in flight
	time.Sleep(50 * time.Millisecond)
	close(release)
	if got := <-replyCh; got != `"finished"` {
		t.Fatalf("in-flight request got %q", got)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !b.Conn.IsClosed() {
		t.Fatal("bus connection not drained and closed")
	}
	if _, err := http.Get(base + "/livez"); err == nil {
		t.Fatal("HTTP still serving after shutdown")
	}
}
