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
	if _, err := r.resolve("gemini-2.5-pro"); provider.CodeOf(err) != provider.CodeNotFound {
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
		{"unknown field", "bogus: 1", "field bogus not found"},
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
