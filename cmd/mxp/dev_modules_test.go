package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/mxp"
)

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// registerProbe registers an agent on the dev mesh's bus and returns the registry's answer.
func registerProbe(t *testing.T, nc *nats.Conn, id string) mxp.RegisterResponse {
	t.Helper()
	body := `{"id":"` + id + `","name":"probe-` + id[:4] + `","capabilities":["x"]}`
	msg, err := nc.Request(bus.SubjectRegistryRegister, []byte(body), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.ReplyError(msg); err != nil {
		t.Fatal(err)
	}
	var rr mxp.RegisterResponse
	if err := json.Unmarshal(msg.Data, &rr); err != nil || !rr.Success {
		t.Fatalf("register: %s %v", msg.Data, err)
	}
	return rr
}

// TestDevTargetsConfigAndReload runs `mxp dev --target edge,registry --config FILE` with
// an MXP_ variable: inference does not run (its subject has no responder, /readyz has no
// inference check), the file's registry.lease and the environment's
// MXP_REGISTRY_HEARTBEAT_INTERVAL reach the registry, bus and config metrics are served
// per service, traces are exported over OTLP, and a change of the file's lease (live) is
// applied without a restart.
func TestDevTargetsConfigAndReload(t *testing.T) {
	var spans atomic.Int64
	otlp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/v1/traces") {
			spans.Add(1)
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(otlp.Close)                             // after mxp dev stops (cleanups run last-in first-out)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.URL) // tracing.Setup reads the process's

	file := filepath.Join(t.TempDir(), "mesh.yaml")
	write := func(lease string) {
		if err := os.WriteFile(file, []byte("log:\n  level: error\nregistry:\n  lease: "+lease+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("12s")
	// Registered before mxp dev starts, so it runs after mxp dev stopped (and flushed its
	// traces: the bus requests below are spans of the registry).
	t.Cleanup(func() {
		if spans.Load() == 0 {
			t.Error("mxp dev exported no traces to OTEL_EXPORTER_OTLP_ENDPOINT")
		}
	})
	env := append(os.Environ(), "MXP_REGISTRY_HEARTBEAT_INTERVAL=2s")
	_, info, out, _ := startDevWith(t, devOptions{EdgeAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", NATSAddr: "127.0.0.1:0",
		LogLevel: "error", Targets: []string{"edge", "registry"}, ConfigFile: file, Env: env,
		set: func(f string) bool { return f != "log-level" }}) // --log-level not given: the file's log.level applies
	if !strings.Contains(out.String(), "services            registry, edge (--target)") {
		t.Fatalf("banner does not name the targets:\n%s", out.String())
	}
	nc, err := nats.Connect(info.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	// Inference is not a target.
	if _, err := nc.Request(bus.SubjectInferenceChat, []byte(`{}`), 2*time.Second); err != nats.ErrNoResponders {
		t.Fatalf("inference answered under --target edge,registry: %v", err)
	}
	code, ready := httpGet(t, info.HTTPAddr+"/readyz")
	if code != 200 || strings.Contains(ready, `"inference"`) || !strings.Contains(ready, `"registry"`) || !strings.Contains(ready, `"edge"`) {
		t.Fatalf("/readyz %d: %s", code, ready)
	}

	// The file and the environment reach the registry.
	rr := registerProbe(t, nc, "6ba7b810-9dad-11d1-80b4-00c04fd430c8")
	if rr.LeaseSeconds != 12 || rr.HeartbeatSeconds != 2 {
		t.Fatalf("register: lease %vs heartbeat %vs, want 12 (file) and 2 (MXP_REGISTRY_HEARTBEAT_INTERVAL)", rr.LeaseSeconds, rr.HeartbeatSeconds)
	}

	// Each service has its own bus connection and config digest on the one /metrics.
	_, metrics := httpGet(t, info.HTTPAddr+"/metrics")
	for _, want := range []string{`mxp_bus_connected{service="registry"} 1`, `mxp_bus_connected{service="edge"} 1`,
		`mxp_config_info{digest="`, `service="registry"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Fatalf("/metrics lacks %s:\n%s", want, metrics)
		}
	}

	// Hot reload: the lease is live. Rewrite the file now and then (slower than the
	// watcher's debounce) until a registration gets the new lease.
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; ; i++ {
		if i%10 == 0 {
			write("15s")
		}
		if registerProbe(t, nc, "6ba7b810-9dad-11d1-80b4-00c04fd430c9").LeaseSeconds == 15 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the reloaded lease never applied:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The reload is counted right after it applies (the watcher's result hooks run once
	// its change hooks have), so the count may trail the new lease by a moment.
	for {
		_, metrics = httpGet(t, info.HTTPAddr+"/metrics")
		if strings.Contains(metrics, `mxp_config_reloads_total{result="ok",service="registry"}`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reload not counted:\n%s", metrics)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
