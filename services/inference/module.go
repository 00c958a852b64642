package inference

import (
	"strings"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/common/config"
	"github.com/mxp-mesh/mesh/pkg/common/lifecycle"
	cmetrics "github.com/mxp-mesh/mesh/pkg/common/metrics"
	"github.com/mxp-mesh/mesh/pkg/common/service"
)

// EnvNATSDeprecated is the NATS URL variable of earlier releases, read as an alias of
// MXP_INFERENCE_NATS (which, when set, wins).
const EnvNATSDeprecated = "MXP_NATS_URL"

// Module is the inference service as the module runner (pkg/common/service) runs it:
// alone as mxp-inference (its own flags, file, bus and HTTP server; the OpenAI-compatible
// API beside /metrics), or as one target of a process that runs several (mxp dev, the
// mesh package's list), its API on the process's HTTP server. Providers also turn on from
// their own variables (ApplyEnv), at start and on every reload; every key but nats and
// http reloads live. Its digest (mxp_config_info, /readyz) is of the config with that
// environment applied.
var Module = service.Define(service.Def[Config]{
	Name:     Name,
	Version:  Version,
	Defaults: Defaults,
	Env:      func(env []string) []string { out, _ := withDeprecatedEnv(env); return out },
	UsageNote: "providers, models and aliases are maps set in the config file; providers' own variables:\n" +
		"OPENAI_API_KEY, OPENAI_BASE_URL, ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL, GEMINI_API_KEY,\n" +
		"GEMINI_BASE_URL, OLLAMA_HOST",
	Base: func(cfg *Config) service.BaseConfig {
		return service.BaseConfig{
			Bus:      bus.Config{URL: cfg.NATS},
			HTTP:     cmetrics.ServerConfig{Addr: cfg.HTTP, Pprof: true, Limits: cfg.HTTPLimits},
			LogLevel: cfg.LogLevel,
		}
	},
	Level:         func(c *Config) string { return c.LogLevel },
	ServiceDigest: true,
	New:           newModule,
})

// newModule builds the service on its Base: the bus API, the OpenAI-compatible routes on
// the HTTP server, its health check, and hot reload under the providers' environment.
func newModule(s *service.Setup[Config]) (lifecycle.Service, error) {
	base, cfg := s.Base, s.Config
	lookup := envLookup(s.Env)
	if _, set := lookup(EnvNATSDeprecated); set {
		base.Logger.Warn(EnvNATSDeprecated + " is deprecated; set MXP_INFERENCE_NATS (or --nats) instead")
	}
	deps := base.Deps()
	ideps := DepsFrom(deps)
	started := false // the first call is the initial load, not a reload
	ideps.OnReload = func(digest string, err error) {
		base.SetDigest(digest)
		if started {
			base.Metrics.ObserveReload(err == nil)
		}
		started = true
	}
	svc, err := New(ApplyEnv(cfg, lookup), ideps)
	if err != nil {
		return nil, err
	}
	if deps.Router != nil {
		svc.Routes(deps.Router)
	}
	deps.Health.Add("inference", svc.HealthCheck)
	svc.WatchConfig(s.Watcher, lookup)
	base.Logger.Info("mxp-inference started", "version", Version, "http", cfg.HTTP,
		"providers", svc.Ready().Providers, "config_file", s.Loader.FilePath())
	return svc, nil
}

// withDeprecatedEnv maps MXP_NATS_URL to MXP_INFERENCE_NATS when only the old name is set.
func withDeprecatedEnv(env []string) (out []string, usedOld bool) {
	var old string
	hasNew := false
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case EnvNATSDeprecated:
			old = v
		case config.EnvName(Name, "nats"):
			hasNew = true
		}
	}
	out = append([]string{}, env...)
	if old != "" && !hasNew {
		out = append(out, config.EnvName(Name, "nats")+"="+old)
		return out, true
	}
	return out, false
}

// envLookup is os.LookupEnv over env (the environment as os.Environ gives it).
func envLookup(env []string) func(string) (string, bool) {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}
