package inference

import (
	"flag"
	"fmt"
	cmetrics "github.com/mxp-mesh/mesh/pkg/common/metrics"
	"slices"
	"sort"
	"time"

	"github.com/mxp-mesh/mesh/pkg/common/config"
	mlog "github.com/mxp-mesh/mesh/pkg/common/log"
	"github.com/mxp-mesh/mesh/pkg/common/security"
)

// Provider kinds.
const (
	KindOpenAI    = "openai"
	KindAnthropic = "anthropic"
	KindGemini    = "gemini"
	KindOllama    = "ollama"
	KindMock      = "mock"
	// KindMxp is the connector to models hosted by agents on the mesh
	// (provider.Hosted): "mxp/<agent-name>/<model>", reached over the bus.
	KindMxp = "mxp"
)

// Name is the service name: the MXP_INFERENCE_* environment prefix and the flag set.
const Name = "inference"

// Config is the inference service's configuration, loaded by pkg/common/config
// (NewLoader): defaults, a YAML file, MXP_INFERENCE_* environment variables, then flags;
// the providers' own variables (ApplyEnv: OPENAI_API_KEY, ...) are laid over the result.
// The zero value of every field means the documented default. Every key but nats and http
// reloads live.
type Config struct {
	// NATS is the bus URL; empty starts an embedded server. Read at start only.
	NATS string `yaml:"nats" flag:"nats" usage:"NATS URL; empty starts an embedded server"`
	// HTTP is the listen address of the OpenAI-compatible API, metrics and health. Default
	// 127.0.0.1:8086. Read at start only.
	HTTP string `yaml:"http" flag:"http" usage:"HTTP listen address (OpenAI-compatible API, metrics, health)"`
	// HTTPLimits bound the HTTP server's clients: read (body), write and idle timeouts,
	// header size, connections (metrics.ServerLimits; zero = default). Read at start only.
	HTTPLimits cmetrics.ServerLimits `yaml:"http_limits"`
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string `yaml:"log_level" flag:"log-level" usage:"debug, info, warn or error" reload:"live"`
	// DefaultModel is used when a request names none. Default "mock".
	DefaultModel string `yaml:"default_model" reload:"live"`
	// SummaryModel summarises dropped turns for context budgeting "summarize". Default
	// DefaultModel.
	SummaryModel string `yaml:"summary_model" reload:"live"`
	// Providers by name. A provider's Kind defaults to its name. File only; entries merge
	// by name over the defaults (the mock provider).
	Providers map[string]ProviderConfig `yaml:"providers" reload:"live"`
	// Models by the name callers use. File only; entries merge by name over the defaults.
	Models map[string]ModelConfig `yaml:"models" reload:"live"`
	// Aliases map a name callers use to a model name ("fast" → "gpt-4o-mini"). File only.
	Aliases map[string]string `yaml:"aliases" reload:"live"`
	// ClientKeys, when set, are the bearer tokens HTTP callers must present. They are
	// checked and never forwarded upstream. In the environment: comma-separated.
	ClientKeys []security.Secret `yaml:"client_keys" reload:"live"`
	// MaxRequestBytes bounds an HTTP or bus request body. Default 4 MiB.
	MaxRequestBytes int64 `yaml:"max_request_bytes" reload:"live"`
	// MaxBusInflight bounds concurrent bus requests; more wait (back-pressure on the
	// subscription). Default 1024.
	MaxBusInflight int `yaml:"max_bus_inflight" reload:"live"`
	// BusRequestTimeout bounds the handling of one bus request (the caller's
	// Mxp-Deadline, when sooner, wins). Default 10m.
	BusRequestTimeout time.Duration `yaml:"bus_request_timeout" reload:"live"`
	// BusRatePerAgent is the per-agent request rate on the bus (by Mxp-Agent-Id; 0 for no
	// limit). Over it, requests get rate_limited.
	BusRatePerAgent float64 `yaml:"bus_rate_per_agent" reload:"live"`
	// Resilience is the default for every provider.
	Resilience Resilience `yaml:"resilience" reload:"live"`
}

// ProviderConfig turns a provider on and tunes it.
type ProviderConfig struct {
	Kind    string          `yaml:"kind"`
	BaseURL string          `yaml:"base_url"`
	APIKey  security.Secret `yaml:"api_key"`
	// Prefixes route unknown model names to this provider by prefix. Defaults per kind:
	// openai gpt-, o1, o3, o4-, chatgpt-; anthropic claude-; gemini gemini-; ollama
	// "ollama/" (stripped before sending); mock "mock".
	Prefixes []string `yaml:"prefixes"`
	// Resilience overrides the service default field by field.
	Resilience Resilience `yaml:"resilience"`
	// TokenDelay slows the mock provider per chunk (mock only).
	TokenDelay time.Duration `yaml:"token_delay"`
}

// ModelConfig is what the service knows about one model.
type ModelConfig struct {
	Provider string `yaml:"provider"`
	// Upstream is the provider's name for the model. Default the model's own name.
	Upstream string `yaml:"upstream"`
	// ContextWindow is the model's context size in tokens; 0 disables budgeting.
	ContextWindow int `yaml:"context_window"`
	// OutputReserve is kept free for the reply when budgeting. Default max(1024, 1/8 of
	// the window) capped at the window's half.
	OutputReserve int `yaml:"output_reserve"`
	// InputPrice and OutputPrice are USD per million tokens, for the cost metric.
	InputPrice  float64 `yaml:"input_price"`
	OutputPrice float64 `yaml:"output_price"`
	// Fallbacks are tried in order when this model fails before its first token.
	Fallbacks []string `yaml:"fallbacks"`
	// Resilience overrides the provider's settings field by field.
	Resilience Resilience `yaml:"resilience"`
}

// Resilience settings. Zero means "inherit" (model → provider → service → default).
type Resilience struct {
	// Timeout covers the whole response, body included. Default 120s.
	Timeout time.Duration `yaml:"timeout"`
	// FirstTokenTimeout bounds the wait for the first streamed chunk. Default 30s.
	FirstTokenTimeout time.Duration `yaml:"first_token_timeout"`
	// MaxRetries after the first attempt, on retryable failures only. Default 2; -1 for none.
	MaxRetries int `yaml:"max_retries"`
	// BackoffBase and BackoffMax shape exponential backoff with full jitter: attempt n
	// waits uniform [0, min(max, base·2ⁿ)]. Defaults 250ms and 10s.
	BackoffBase time.Duration `yaml:"backoff_base"`
	BackoffMax  time.Duration `yaml:"backoff_max"`
	// MaxRetryAfter caps how long a provider's Retry-After may make us wait; longer
	// hints end retrying (the error goes to fallbacks or the caller). Default 30s.
	MaxRetryAfter time.Duration `yaml:"max_retry_after"`
	// MaxConcurrency bounds in-flight requests per provider. Default 64.
	MaxConcurrency int `yaml:"max_concurrency"`
	// Breaker tunes the circuit breaker of each provider+model.
	Breaker BreakerConfig `yaml:"breaker"`
}

// BreakerConfig tunes a circuit breaker. It opens after ConsecutiveFailures failures in a
// row, or when at least MinRequests were seen in Interval and the failure ratio reaches
// FailureRate; after OpenTimeout it lets HalfOpenRequests probes through and closes when
// they succeed.
type BreakerConfig struct {
	ConsecutiveFailures uint32        `yaml:"consecutive_failures"` // default 5
	FailureRate         float64       `yaml:"failure_rate"`         // default 0.5
	MinRequests         uint32        `yaml:"min_requests"`         // default 20
	Interval            time.Duration `yaml:"interval"`             // default 60s
	OpenTimeout         time.Duration `yaml:"open_timeout"`         // default 30s
	HalfOpenRequests    uint32        `yaml:"half_open_requests"`   // default 1
}

// DefaultResilience is what every unset Resilience field falls back to.
var DefaultResilience = Resilience{
	Timeout: 120 * time.Second, FirstTokenTimeout: 30 * time.Second, MaxRetries: 2,
	BackoffBase: 250 * time.Millisecond, BackoffMax: 10 * time.Second, MaxRetryAfter: 30 * time.Second,
	MaxConcurrency: 64,
	Breaker: BreakerConfig{ConsecutiveFailures: 5, FailureRate: 0.5, MinRequests: 20,
		Interval: 60 * time.Second, OpenTimeout: 30 * time.Second, HalfOpenRequests: 1},
}

// merge returns r with its zero fields taken from base.
func (r Resilience) merge(base Resilience) Resilience {
	pick := func(v, b time.Duration) time.Duration {
		if v != 0 {
			return v
		}
		return b
	}
	r.Timeout = pick(r.Timeout, base.Timeout)
	r.FirstTokenTimeout = pick(r.FirstTokenTimeout, base.FirstTokenTimeout)
	r.BackoffBase = pick(r.BackoffBase, base.BackoffBase)
	r.BackoffMax = pick(r.BackoffMax, base.BackoffMax)
	r.MaxRetryAfter = pick(r.MaxRetryAfter, base.MaxRetryAfter)
	if r.MaxRetries == 0 {
		r.MaxRetries = base.MaxRetries
	}
	if r.MaxConcurrency == 0 {
		r.MaxConcurrency = base.MaxConcurrency
	}
	b, bb := &r.Breaker, base.Breaker
	if b.ConsecutiveFailures == 0 {
		b.ConsecutiveFailures = bb.ConsecutiveFailures
	}
	if b.FailureRate == 0 {
		b.FailureRate = bb.FailureRate
	}
	if b.MinRequests == 0 {
		b.MinRequests = bb.MinRequests
	}
	b.Interval = pick(b.Interval, bb.Interval)
	b.OpenTimeout = pick(b.OpenTimeout, bb.OpenTimeout)
	if b.HalfOpenRequests == 0 {
		b.HalfOpenRequests = bb.HalfOpenRequests
	}
	return r
}

// DefaultPrefixes are the model-name prefixes routed to each kind when a provider
// configures none.
var DefaultPrefixes = map[string][]string{
	KindOpenAI:    {"gpt-", "o1", "o3", "o4-", "chatgpt-"},
	KindAnthropic: {"claude-"},
	KindGemini:    {"gemini-"},
	KindOllama:    {"ollama/"},
	KindMock:      {"mock"},
	KindMxp:       {"mxp/"},
}

// Defaults returns the built-in configuration: the mock provider only.
func Defaults() Config {
	return Config{
		HTTP:         "127.0.0.1:8086",
		LogLevel:     "info",
		DefaultModel: "mock",
		Providers:    map[string]ProviderConfig{KindMock: {Kind: KindMock}, KindMxp: {Kind: KindMxp}},
		Models: map[string]ModelConfig{
			"mock": {Provider: KindMock, ContextWindow: 8192, OutputReserve: 1024},
		},
	}
}

// NewLoader returns the service's layered config loader (pkg/common/config): Defaults,
// the YAML file (--config, MXP_INFERENCE_CONFIG), MXP_INFERENCE_* environment variables,
// then flags parsed from args into fs (nil for a new set). Apply ApplyEnv to what it loads.
func NewLoader(args []string, fs *flag.FlagSet) *config.Loader[Config] {
	return &config.Loader[Config]{Service: Name, Defaults: Defaults, Args: args, FlagSet: fs}
}

// LoadConfig reads a YAML file over Defaults, without the environment or flags. An empty
// path returns Defaults.
func LoadConfig(path string) (Config, error) {
	l := &config.Loader[Config]{Service: Name, Defaults: Defaults, File: path, Env: []string{}}
	return l.Load()
}

func mergeMap[V any](a, b map[string]V) map[string]V {
	out := make(map[string]V, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// Environment variables read by ApplyEnv.
const (
	EnvOpenAIKey     = "OPENAI_API_KEY"
	EnvOpenAIBase    = "OPENAI_BASE_URL"
	EnvAnthropicKey  = "ANTHROPIC_API_KEY"
	EnvAnthropicBase = "ANTHROPIC_BASE_URL"
	EnvGeminiKey     = "GEMINI_API_KEY"
	EnvGeminiBase    = "GEMINI_BASE_URL"
	EnvOllamaHost    = "OLLAMA_HOST"
)

// providerEnv names, per provider kind, the variable that enables it (a key, or Ollama's
// host) and the one that moves its base URL: ApplyEnv reads them, and a model_not_found
// error names the one that would enable the model.
var providerEnv = []struct{ kind, enable, base string }{
	{KindOpenAI, EnvOpenAIKey, EnvOpenAIBase},
	{KindAnthropic, EnvAnthropicKey, EnvAnthropicBase},
	{KindGemini, EnvGeminiKey, EnvGeminiBase},
	{KindOllama, EnvOllamaHost, ""},
}

// enablingEnv is the variable that turns provider kind on ("" for a kind that none does).
func enablingEnv(kind string) string {
	for _, e := range providerEnv {
		if e.kind == kind {
			return e.enable
		}
	}
	return ""
}

// ApplyEnv turns providers on from the environment (lookup is os.LookupEnv in
// production): a key variable enables openai, anthropic or gemini, OLLAMA_HOST enables
// ollama, and the *_BASE_URL variables point a provider elsewhere. The environment wins
// over the file for the fields it sets.
func ApplyEnv(cfg Config, lookup func(string) (string, bool)) Config {
	cfg.Providers = mergeMap(cfg.Providers, nil)
	set := func(name, keyVar, baseVar string) {
		key, hasKey := lookup(keyVar)
		base, hasBase := lookup(baseVar)
		p, exists := cfg.Providers[name]
		if !(hasKey && key != "") && !exists {
			return
		}
		if p.Kind == "" {
			p.Kind = name
		}
		if hasKey && key != "" {
			p.APIKey = security.NewSecret(key)
		}
		if hasBase && base != "" {
			p.BaseURL = base
		}
		cfg.Providers[name] = p
	}
	for _, e := range providerEnv {
		if e.kind != KindOllama {
			set(e.kind, e.enable, e.base)
		}
	}
	if host, ok := lookup(EnvOllamaHost); ok && host != "" {
		p := cfg.Providers[KindOllama]
		if p.Kind == "" {
			p.Kind = KindOllama
		}
		p.BaseURL = host
		cfg.Providers[KindOllama] = p
	}
	return cfg
}

// Validate reports the first inconsistency: unknown kinds, models on unknown providers,
// output reserves that fill the window, alias loops. (Fallbacks may name models routed by
// prefix to providers that are off; Reload logs those, and chains skip them.)
func (c *Config) Validate() error {
	if c.LogLevel != "" {
		if _, err := mlog.ParseLevel(c.LogLevel); err != nil {
			return config.FieldError("log_level", "want debug, info, warn or error, got %q", c.LogLevel)
		}
	}
	names := make([]string, 0, len(c.Providers))
	for name := range c.Providers {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p := c.Providers[name]
		kind := p.Kind
		if kind == "" {
			kind = name
		}
		if !slices.Contains([]string{KindOpenAI, KindAnthropic, KindGemini, KindOllama, KindMock, KindMxp}, kind) {
			return fmt.Errorf("inference config: provider %q has unknown kind %q", name, kind)
		}
	}
	for name, m := range c.Models {
		if _, ok := c.Providers[m.Provider]; m.Provider != "" && !ok {
			return fmt.Errorf("inference config: model %q names unknown provider %q", name, m.Provider)
		}
		if m.ContextWindow < 0 || m.OutputReserve < 0 || (m.ContextWindow > 0 && m.OutputReserve >= m.ContextWindow) {
			return fmt.Errorf("inference config: model %q: output_reserve %d must be below context_window %d", name, m.OutputReserve, m.ContextWindow)
		}
	}
	for alias := range c.Aliases {
		seen := map[string]bool{}
		for n := alias; ; {
			if seen[n] {
				return fmt.Errorf("inference config: alias loop through %q", alias)
			}
			seen[n] = true
			next, ok := c.Aliases[n]
			if !ok {
				break
			}
			n = next
		}
	}
	return nil
}
