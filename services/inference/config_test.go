package inference

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mxp-mesh/mesh/services/inference/provider"
)

func TestApplyEnv(t *testing.T) {
	env := map[string]string{
		EnvOpenAIKey: "sk-o", EnvAnthropicKey: "sk-a", EnvAnthropicBase: "http://127.0.0.1:9/proxy",
		EnvOllamaHost: "127.0.0.1:11434",
	}
	cfg := ApplyEnv(Defaults(), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	for _, name := range []string{KindMock, KindOpenAI, KindAnthropic, KindOllama} {
		if _, ok := cfg.Providers[name]; !ok {
			t.Errorf("provider %s not enabled", name)
		}
	}
	if _, ok := cfg.Providers[KindGemini]; ok {
		t.Error("gemini enabled without a key")
	}
	eq(t, "openai key", cfg.Providers[KindOpenAI].APIKey.Reveal(), "sk-o")
	eq(t, "anthropic base", cfg.Providers[KindAnthropic].BaseURL, "http://127.0.0.1:9/proxy")
	eq(t, "ollama host", cfg.Providers[KindOllama].BaseURL, "127.0.0.1:11434")
	if s := cfg.Providers[KindOpenAI].APIKey.String(); strings.Contains(s, "sk-o") {
		t.Errorf("secret printed: %s", s)
	}
}

func TestLoadConfigAndRouting(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "inference.yaml")
	os.WriteFile(path, []byte(`
default_model: fast
aliases:
  fast: gpt-4o-mini
  smart: claude-sonnet
providers:
  openai: {api_key: sk-file, resilience: {timeout: 45s, max_retries: 4}}
  anthropic: {}
  local: {kind: ollama, base_url: "127.0.0.1:11434", prefixes: ["local/"]}
models:
  claude-sonnet: {provider: anthropic, upstream: claude-sonnet-4-5, context_window: 200000, output_reserve: 8192, input_price: 3, output_price: 15, fallbacks: [gpt-4o-mini]}
`), 0o600)
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	env := newTestService(t, cfg, nil)
	r := env.svc.routes.Load()
	cases := []struct{ name, provider, upstream string }{
		{"fast", "openai", "gpt-4o-mini"},
		{"", "openai", "gpt-4o-mini"},
		{"smart", "anthropic", "claude-sonnet-4-5"},
		{"claude-3-haiku", "anthropic", "claude-3-haiku"},
		{"o3-mini", "openai", "o3-mini"},
		{"local/llama3.2", "local", "llama3.2"},
		{"mock", "mock", "mock"},
	}
	for _, c := range cases {
		tg, err := r.resolve(c.name)
		if err != nil {
			t.Errorf("resolve %q: %v", c.name, err)
			continue
		}
		eq(t, c.name+" provider", tg.prov.name, c.provider)
		eq(t, c.name+" upstream", tg.upstream, c.upstream)
	}
	if _, err := r.resolve("gemini-2.5-pro"); provider.CodeOf(err) != provider.CodeModelNotFound {
		t.Errorf("gemini is off, got %v", err)
	}
	tg, _ := r.resolve("gpt-4o")
	eq(t, "provider timeout", tg.res.Timeout, 45*time.Second)
	eq(t, "provider retries", tg.res.MaxRetries, 4)
	eq(t, "default first-token timeout", tg.res.FirstTokenTimeout, DefaultResilience.FirstTokenTimeout)
	chain, _ := r.chain("smart")
	eq(t, "chain", len(chain), 2)
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want string
	}{
		{"unknown field", "bogus: 1", "bogus (file "},
		{"unknown field in a provider", "providers: {openai: {api_kye: x}}", "providers.openai.api_kye"},
		{"bad duration in a model", "models: {m: {resilience: {timeout: soon}}}", "models.m.resilience.timeout"},
		{"bad log level", "log_level: loud", "log_level"},
		{"unknown kind", "providers: {x: {kind: llamafarm}}", "unknown kind"},
		{"unknown provider", "models: {m: {provider: nobody}}", "unknown provider"},
		{"reserve over window", "models: {m: {context_window: 100, output_reserve: 100}}", "output_reserve"},
		{"alias loop", "aliases: {a: b, b: a}", "alias loop"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.yaml")
			os.WriteFile(path, []byte(c.yaml), 0o600)
			cfg, err := LoadConfig(path)
			if err == nil {
				err = cfg.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want error containing %q", err, c.want)
			}
		})
	}
}

func TestReloadKeepsBreakers(t *testing.T) {
	env := newTestService(t, Defaults(), nil)
	before := env.svc.routes.Load().providers[KindMock]
	cfg := env.svc.Config()
	cfg.Aliases = map[string]string{"x": "mock"}
	if err := env.svc.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if env.svc.routes.Load().providers[KindMock] != before {
		t.Error("unchanged provider was rebuilt on reload")
	}
	bad := cfg
	bad.Models = map[string]ModelConfig{"m": {Provider: "ghost"}}
	if err := env.svc.Reload(bad); err == nil {
		t.Error("bad config accepted")
	}
	if _, err := env.svc.routes.Load().resolve("x"); err != nil {
		t.Errorf("old config lost after a failed reload: %v", err)
	}
}

func TestLoaderLayers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inference.yaml")
	os.WriteFile(path, []byte("nats: nats://127.0.0.1:1\nlog_level: warn\nmax_bus_inflight: 8\n"+
		"providers: {openai: {base_url: http://127.0.0.1:2, resilience: {max_retries: 4}}}\n"+
		"models: {gpt-x: {provider: openai, context_window: 1000}}\n"), 0o600)
	tests := []struct {
		name  string
		env   []string
		args  []string
		check func(t *testing.T, c Config)
	}{
		{"file over defaults", nil, nil, func(t *testing.T, c Config) {
			eq(t, "nats", c.NATS, "nats://127.0.0.1:1")
			eq(t, "http default", c.HTTP, "127.0.0.1:8086")
			eq(t, "log level", c.LogLevel, "warn")
			eq(t, "inflight", c.MaxBusInflight, 8)
			eq(t, "mock kept", c.Providers[KindMock].Kind, KindMock)
			eq(t, "openai retries", c.Providers[KindOpenAI].Resilience.MaxRetries, 4)
			eq(t, "model", c.Models["gpt-x"].ContextWindow, 1000)
		}},
		{"environment over file", []string{"MXP_INFERENCE_NATS=nats://127.0.0.1:3", "MXP_INFERENCE_HTTP=127.0.0.1:0",
			"MXP_INFERENCE_RESILIENCE_BREAKER_FAILURE_RATE=0.25", "MXP_INFERENCE_CLIENT_KEYS=k1,k2"}, nil, func(t *testing.T, c Config) {
			eq(t, "nats", c.NATS, "nats://127.0.0.1:3")
			eq(t, "http", c.HTTP, "127.0.0.1:0")
			eq(t, "failure rate", c.Resilience.Breaker.FailureRate, 0.25)
			eq(t, "client keys", len(c.ClientKeys), 2)
		}},
		{"flags over environment", []string{"MXP_INFERENCE_NATS=nats://127.0.0.1:3"},
			[]string{"-nats", "nats://127.0.0.1:4", "--log-level", "debug"}, func(t *testing.T, c Config) {
				eq(t, "nats", c.NATS, "nats://127.0.0.1:4")
				eq(t, "log level", c.LogLevel, "debug")
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := NewLoader(tc.args, nil)
			l.File = path
			l.Env = append([]string{}, tc.env...)
			cfg, err := l.Load()
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, cfg)
		})
	}
	l := NewLoader(nil, nil)
	l.Env = []string{"MXP_INFERENCE_PROVIDERS=openai"}
	if _, err := l.Load(); err == nil || !strings.Contains(err.Error(), "config file only") {
		t.Errorf("providers from the environment: %v", err)
	}
}
