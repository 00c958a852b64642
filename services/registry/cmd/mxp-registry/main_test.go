package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/mxp"
	"github.com/mxp-mesh/mesh/services/registry"
)

// run is the program without the process: its exit status.
func run(ctx context.Context, args []string, stderr io.Writer) int {
	return registry.Module.Run(ctx, args, nil, stderr)
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
		key  string
	}{
		{[]string{"--lease", "5ms"}, "lease"},
		{[]string{"--store", "postgres://x"}, "store"},
		{[]string{"--lease", "soon"}, "flag --lease"},
		{[]string{"--log-level", "loud"}, "log_level"},
		// An explicit interval is kept, so one not shorter than the lease still fails.
		{[]string{"--lease", "2s", "--heartbeat-interval", "3s"}, "heartbeat_interval"},
		{[]string{"--heartbeat-interval", "-1s"}, "heartbeat_interval"},
	}
	for _, tc := range tests {
		var out syncBuffer
		if code := run(context.Background(), tc.args, &out); code != 2 || !strings.Contains(out.String(), tc.key) {
			t.Errorf("%v: code %d, output %q (want the key %q named)", tc.args, code, out.String(), tc.key)
		}
	}
	var out syncBuffer
	if code := run(context.Background(), []string{"--help"}, &out); code != 0 || !strings.Contains(out.String(), "MXP_REGISTRY_LEASE") ||
		!strings.Contains(out.String(), "-heartbeat-interval") {
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

// TestRunAlone runs the binary's main against an external NATS URL, registers an agent
// over the bus, reads it over HTTP, and shuts down cleanly.
func TestRunAlone(t *testing.T) {
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	httpAddr := freeAddr(t)
	t.Setenv("MXP_REGISTRY_LEASE", "12s")
	ctx, cancel := context.WithCancel(context.Background())
	var logs syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--nats", srv.ClientURL(), "--http", httpAddr, "--store", "memory"}, &logs)
	}()

	nc, err := srv.Connect("client")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	id := "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
	body := fmt.Sprintf(`{"id":%q,"name":"cli","capabilities":["chat"],"address":"127.0.0.1:9000","metadata":{"version":"1","tags":["x"]}}`, id)
	var rr mxp.RegisterResponse
	deadline := time.Now().Add(10 * time.Second)
	for {
		msg, err := nc.Request(bus.SubjectRegistryRegister, []byte(body), time.Second)
		if err == nil {
			json.Unmarshal(msg.Data, &rr)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry never answered: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !rr.Success || rr.LeaseSeconds != 12 {
		t.Fatalf("register: %+v (env lease must apply)", rr)
	}
	resp, err := http.Get("http://" + httpAddr + "/v1/agents/" + id)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"name":"cli"`) {
		t.Fatalf("GET agent: %d %s", resp.StatusCode, b)
	}
	for _, p := range []string{"/readyz", "/metrics"} {
		resp, err := http.Get("http://" + httpAddr + p)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %v", p, err, resp)
		}
		resp.Body.Close()
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit code %d\n%s", code, logs.String())
	}
	for _, want := range []string{`"msg":"mxp-registry starting"`, `"config_digest"`, `"msg":"shutdown complete"`, `"service":"registry"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %s", want)
		}
	}
}

// signalWriter is a log sink that closes seen once the logs contain want.
type signalWriter struct {
	syncBuffer
	want string
	seen chan struct{}
	once sync.Once
}

func (w *signalWriter) Write(p []byte) (int, error) {
	n, err := w.syncBuffer.Write(p)
	if strings.Contains(w.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return n, err
}

// TestLeaseAloneDerivesHeartbeat is the regression test of `mxp-registry --lease 2s`,
// which refused to start because the heartbeat interval stayed 10s: a lease set alone, by
// flag, environment or file, starts the registry, and the register response tells agents
// the derived interval (lease/3).
func TestLeaseAloneDerivesHeartbeat(t *testing.T) {
	file := t.TempDir() + "/registry.yaml"
	if err := os.WriteFile(file, []byte("lease: 2s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	shared := t.TempDir() + "/mesh.yaml"
	if err := os.WriteFile(shared, []byte("log:\n  level: warn\nregistry:\n  lease: 2s\nedge:\n  addr: 127.0.0.1:0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		env  []string
	}{
		{"flag", []string{"--lease", "2s"}, nil},
		{"env", nil, []string{"MXP_REGISTRY_LEASE=2s"}},
		{"file", []string{"--config", file}, nil},
		// The file of a process of several services (mxp dev --config): its section.
		{"shared file", []string{"--config", shared}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := bus.StartEmbedded(bus.EmbeddedConfig{})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Shutdown()
			// "registry running" is logged once the bus endpoints answer (after the
			// start line).
			logs := &signalWriter{want: `"msg":"registry running"`, seen: make(chan struct{})}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan int, 1)
			args := append([]string{"--nats", srv.ClientURL(), "--http", "", "--store", "memory"}, tc.args...)
			go func() { done <- registry.Module.Run(ctx, args, tc.env, logs) }()
			select {
			case <-logs.seen:
			case code := <-done:
				t.Fatalf("exited with %d before serving:\n%s", code, logs.String())
			}
			if !strings.Contains(logs.String(), `"heartbeat_interval":666666666`) {
				t.Errorf("start log lacks the derived interval:\n%s", logs.String())
			}
			nc, err := srv.Connect("client")
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			body := `{"id":"6ba7b810-9dad-11d1-80b4-00c04fd430c8","name":"short","capabilities":["chat"]}`
			msg, err := nc.Request(bus.SubjectRegistryRegister, []byte(body), 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			var rr mxp.RegisterResponse
			if err := json.Unmarshal(msg.Data, &rr); err != nil {
				t.Fatal(err)
			}
			if !rr.Success || rr.LeaseSeconds != 2 || rr.HeartbeatSeconds != (2*time.Second/3).Seconds() {
				t.Fatalf("register: %+v, want lease 2s and a heartbeat interval of lease/3", rr)
			}
			cancel()
			if code := <-done; code != 0 {
				t.Fatalf("exit code %d\n%s", code, logs.String())
			}
		})
	}
}
