package inference

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mxp-mesh/mesh/pkg/common/config"
)

func TestWatchConfigReloads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inference.yaml")
	if err := os.WriteFile(path, []byte("aliases: {a: mock}\nnats: nats://127.0.0.1:1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l := NewLoader(nil, nil)
	l.File, l.Env = path, []string{}
	cfg, err := l.Load()
	if err != nil {
		t.Fatal(err)
	}
	env := newTestService(t, cfg, nil)
	w := config.NewWatcher(l, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	w.Debounce = 20 * time.Millisecond
	// The providers' environment is laid over every reload, as at start-up.
	env.svc.WatchConfig(w, func(k string) (string, bool) {
		if k == EnvOpenAIKey {
			return "sk-test", true
		}
		return "", false
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() { cancel(); <-done }()

	resolves := func(name string) bool { _, err := env.svc.routes.Load().resolve(name); return err == nil }
	// Rewrite now and then (slower than the watcher's debounce) until the watcher,
	// started concurrently, has seen a change.
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; !resolves("b"); i++ {
		if time.Now().After(deadline) {
			t.Fatal("config change not picked up")
		}
		if i%25 == 0 {
			os.WriteFile(path, []byte("aliases: {b: mock}\nnats: nats://127.0.0.1:2\n"), 0o600)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if resolves("a") {
		t.Error("old alias still there after reload")
	}
	if _, ok := env.svc.Config().Providers[KindOpenAI]; !ok {
		t.Error("provider environment not applied on reload")
	}
	eq(t, "nats needs a restart: running value kept", w.Current().NATS, "nats://127.0.0.1:1")
	// A broken file keeps the running config.
	os.WriteFile(path, []byte("aliases: [not a map\n"), 0o600)
	if _, err := w.Reload(); err == nil {
		t.Error("broken file accepted")
	}
	if !resolves("b") {
		t.Error("running config lost after a bad reload")
	}
}

func TestOnReloadReportsDigest(t *testing.T) {
	var digests []string
	var failures int
	cfg := Defaults()
	svc, err := New(cfg, Deps{OnReload: func(d string, err error) {
		digests = append(digests, d)
		if err != nil {
			failures++
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Aliases = map[string]string{"x": "mock"}
	svc.Reload(cfg)
	bad := cfg
	bad.Models = map[string]ModelConfig{"m": {Provider: "ghost"}}
	svc.Reload(bad)
	if len(digests) != 3 || digests[0] == digests[1] || digests[1] != digests[2] || failures != 1 {
		t.Errorf("digests %v, failures %d", digests, failures)
	}
}
