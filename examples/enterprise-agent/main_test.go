package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mxp-mesh/mesh/examples/internal/meshtest"
	"github.com/mxp-mesh/mesh/pkg/agent"
	"github.com/mxp-mesh/mesh/pkg/common/config"
)

func writeConfig(t *testing.T, path, greeting string, rate float64, burst int) {
	t.Helper()
	body := "greeting: " + greeting + "\nrate_per_second: " + strconvF(rate) + "\nrate_burst: " + strconvI(burst) + "\n"
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil { // replace atomically, as editors do
		t.Fatal(err)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestEnterpriseAgent(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := meshtest.New(t, nil)
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "agent.yaml")
	writeConfig(t, cfgFile, "Hello", 0.001, 2) // two calls, then rate limited
	newApp := func() *App {
		loader := &config.Loader[Config]{Service: "enterprise", Defaults: Defaults, File: cfgFile, Env: []string{},
			Args: []string{"-edge-addr", m.EdgeAddr, "-edge-key", m.EdgeKey, "-key-file", filepath.Join(dir, "agent.key"),
				"-http", "127.0.0.1:0", "-checkpoint-file", filepath.Join(dir, "state.json")}}
		app, err := NewApp(loader, quiet)
		if err != nil {
			t.Fatal(err)
		}
		if err := app.StartHTTP(); err != nil {
			t.Fatal(err)
		}
		return app
	}
	client, err := agent.New(agent.Config{Name: "client", EdgeAddr: m.EdgeAddr, EdgeKey: m.EdgeKey, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	meshtest.Run(t, client)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// First life.
	app := newApp()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- app.Run(runCtx) }()
	waitActive(t, app.Agent())
	base := "http://" + app.HTTPAddr()
	if code, _ := get(t, base+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz = %d while active", code)
	}
	var resp AskResponse
	for i := 1; i <= 2; i++ {
		if err := client.CallJSON(ctx, app.Agent().ID(), AskRequest{Prompt: "hi"}, &resp); err != nil {
			t.Fatal(err)
		}
		if resp.Greeting != "Hello" || resp.Served != i || resp.Answer != "Mock reply to: hi" {
			t.Fatalf("answer %d = %+v", i, resp)
		}
	}
	if err := client.CallJSON(ctx, app.Agent().ID(), AskRequest{Prompt: "hi"}, &resp); agent.CodeOf(err) != agent.CodeRateLimited {
		t.Fatalf("third call: %v", err)
	}
	_, body := get(t, base+"/metrics")
	for _, want := range []string{`mxp_agent_state{agent="enterprise-agent"`, `outcome="completed"} 2`, `outcome="failed"} 1`, "mxp_config_info"} {
		if !strings.Contains(body, want) {
			t.Fatalf("/metrics lacks %q", want)
		}
	}

	// Hot reload: a new greeting and a generous rate, without a restart.
	reloads := app.Watcher().Reloads()
	writeConfig(t, cfgFile, "Welcome back", 1000, 1000)
	for app.Watcher().Reloads() == reloads {
		select {
		case <-ctx.Done():
			t.Fatal("config change never reloaded")
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := client.CallJSON(ctx, app.Agent().ID(), AskRequest{Prompt: "again"}, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Greeting != "Welcome back" || resp.Served != 3 {
		t.Fatalf("after reload = %+v", resp)
	}

	// Graceful shutdown (SIGTERM cancels this context in main) saves the checkpoint.
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if app.Agent().State() != agent.StateTerminated {
		t.Fatalf("state %s", app.Agent().State())
	}

	// Second life: the state and the conversation carry on.
	app2 := newApp()
	if app2.state.Served != 3 || app2.memory.Len() != 6 {
		t.Fatalf("restored served %d, memory %d", app2.state.Served, app2.memory.Len())
	}
	runCtx2, stop2 := context.WithCancel(ctx)
	done2 := make(chan error, 1)
	go func() { done2 <- app2.Run(runCtx2) }()
	waitActive(t, app2.Agent())
	if err := client.CallJSON(ctx, app2.Agent().ID(), AskRequest{Prompt: "still there?"}, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Served != 4 {
		t.Fatalf("served after restart = %d, want 4", resp.Served)
	}
	stop2()
	if err := <-done2; err != nil {
		t.Fatal(err)
	}
}

func waitActive(t *testing.T, a *agent.Agent) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for a.State() != agent.StateActive {
		if time.Now().After(deadline) {
			t.Fatalf("state %s", a.State())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func strconvF(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
func strconvI(i int) string     { return strconv.Itoa(i) }
