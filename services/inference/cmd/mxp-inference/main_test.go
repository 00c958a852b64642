package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/services/inference"
)

// run is the program without the process: its exit status.
func run(ctx context.Context, args, environ []string, stderr io.Writer) int {
	return inference.Module.Run(ctx, args, environ, stderr)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestBadConfigExitCode(t *testing.T) {
	tests := []struct {
		args []string
		env  []string
		key  string
	}{
		{[]string{"--log-level", "loud"}, nil, "log_level"},
		{nil, []string{"MXP_INFERENCE_MAX_BUS_INFLIGHT=many"}, "env MXP_INFERENCE_MAX_BUS_INFLIGHT"},
		{nil, []string{"MXP_INFERENCE_NAT=nats://127.0.0.1:1"}, "MXP_INFERENCE_NAT"},
		{[]string{"--nats"}, nil, "flag needs an argument"},
	}
	for _, tc := range tests {
		var out syncBuffer
		if code := run(context.Background(), tc.args, tc.env, &out); code != 2 || !strings.Contains(out.String(), tc.key) {
			t.Errorf("%v %v: code %d, output %q (want %q named)", tc.args, tc.env, code, out.String(), tc.key)
		}
	}
	var out syncBuffer
	if code := run(context.Background(), []string{"--help"}, nil, &out); code != 0 ||
		!strings.Contains(out.String(), "MXP_INFERENCE_NATS") || !strings.Contains(out.String(), "OPENAI_API_KEY") {
		t.Fatalf("--help: %d %s", code, out.String())
	}
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func get(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestRunAloneReloads runs main against an external NATS server named by the deprecated
// MXP_NATS_URL, with models from the config file and a provider from its own variable,
// then edits the file and sees the new model served without a restart.
func TestRunAloneReloads(t *testing.T) {
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	path := filepath.Join(t.TempDir(), "inference.yaml")
	os.WriteFile(path, []byte("models: {first: {provider: mock}}\n"), 0o600)
	httpAddr := freeAddr(t)
	env := []string{"MXP_NATS_URL=" + srv.ClientURL(), "MXP_INFERENCE_HTTP=" + httpAddr,
		"OLLAMA_HOST=http://127.0.0.1:1"}
	ctx, cancel := context.WithCancel(context.Background())
	var logs syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"--config", path}, env, &logs) }()

	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s never happened\n%s", what, logs.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	models := func() string { _, b := get("http://" + httpAddr + "/v1/models"); return b }
	waitFor("serving the file's model", func() bool { return strings.Contains(models(), `"first"`) })
	code, body := get("http://" + httpAddr + "/readyz")
	if code != 200 || !strings.Contains(body, "inference") {
		t.Fatalf("/readyz: %d %s", code, body)
	}
	if _, rb := get("http://" + httpAddr + "/readyz/inference"); !strings.Contains(rb, "ollama") {
		t.Errorf("provider from OLLAMA_HOST not enabled: %s", rb)
	}
	// Rewrite now and then (slower than the watcher's debounce) until the change is seen.
	i := 0
	waitFor("serving the reloaded model", func() bool {
		if i++; i%10 == 1 {
			os.WriteFile(path, []byte("models: {second: {provider: mock}}\n"), 0o600)
		}
		return strings.Contains(models(), `"second"`)
	})
	if strings.Contains(models(), `"first"`) {
		t.Error("the removed model is still served")
	}
	_, metrics := get("http://" + httpAddr + "/metrics")
	if !strings.Contains(metrics, `mxp_config_reloads_total{result="ok"`) {
		t.Errorf("reload not counted:\n%s", grepLines(metrics, "mxp_config"))
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit code %d\n%s", code, logs.String())
	}
	for _, want := range []string{"MXP_NATS_URL is deprecated", `"msg":"mxp-inference started"`, `"service":"inference"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %s\n%s", want, logs.String())
		}
	}
}

func grepLines(s, sub string) string {
	return strings.Join(slices.DeleteFunc(strings.Split(s, "\n"), func(l string) bool { return !strings.Contains(l, sub) }), "\n")
}
