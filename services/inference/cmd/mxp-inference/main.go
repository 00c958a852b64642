// Command mxp-inference runs the inference service alone: the bus API on NATS, and the
// OpenAI-compatible HTTP API on the admin server beside /metrics, /livez, /readyz and
// /debug/pprof (pkg/common/service.Base).
//
//	mxp-inference [--config FILE] [--nats URL] [--http ADDR] [--log-level L]
//
// Every service setting is also a YAML key in the config file and an MXP_INFERENCE_*
// environment variable (flags win over the environment, which wins over the file);
// `--help` lists them. Providers, models and aliases are maps in the config file, and
// providers also turn on from their own variables OPENAI_API_KEY, ANTHROPIC_API_KEY,
// GEMINI_API_KEY and OLLAMA_HOST (see docs/inference.md). MXP_NATS_URL is read as a
// deprecated alias of MXP_INFERENCE_NATS. With no NATS URL an embedded server is
// started, which is only useful for trying the HTTP API. The config file is reloaded when
// it changes and on SIGHUP; SIGINT/SIGTERM shut down gracefully.
package main

import (
	"context"
	"flag"
	"io"
	"strings"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/common/config"
	"github.com/mxp-mesh/mesh/pkg/common/lifecycle"
	mlog "github.com/mxp-mesh/mesh/pkg/common/log"
	"github.com/mxp-mesh/mesh/pkg/common/metrics"
	"github.com/mxp-mesh/mesh/pkg/common/service"
	"github.com/mxp-mesh/mesh/services/inference"
)

// envNATSDeprecated is the NATS URL variable of earlier releases; MXP_INFERENCE_NATS,
// when set, wins.
const envNATSDeprecated = "MXP_NATS_URL"

var program = service.Program[inference.Config]{
	Name: inference.Name,
	Loader: func(args, env []string, fs *flag.FlagSet) *config.Loader[inference.Config] {
		l := inference.NewLoader(args, fs)
		l.Env, _ = withDeprecatedEnv(env)
		return l
	},
	UsageNote: "providers, models and aliases are maps set in the config file; providers' own variables:\n" +
		"OPENAI_API_KEY, OPENAI_BASE_URL, ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL, GEMINI_API_KEY,\n" +
		"GEMINI_BASE_URL, OLLAMA_HOST",
	Base: func(cfg *inference.Config) service.BaseConfig {
		return service.BaseConfig{
			Version:  inference.Version,
			Bus:      bus.Config{URL: cfg.NATS},
			HTTP:     metrics.ServerConfig{Addr: cfg.HTTP, Pprof: true, Limits: cfg.HTTPLimits},
			LogLevel: cfg.LogLevel,
		}
	},
	Start: start,
}

func main() { program.Main() }

// run is the program without the process, for tests: the exit status.
func run(ctx context.Context, args, environ []string, stderr io.Writer) int {
	return program.Run(ctx, args, environ, stderr)
}

// withDeprecatedEnv maps MXP_NATS_URL to MXP_INFERENCE_NATS when only the old name is set.
func withDeprecatedEnv(env []string) (out []string, usedOld bool) {
	var old string
	hasNew := false
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case envNATSDeprecated:
			old = v
		case config.EnvName(inference.Name, "nats"):
			hasNew = true
		}
	}
	out = append([]string{}, env...)
	if old != "" && !hasNew {
		out = append(out, config.EnvName(inference.Name, "nats")+"="+old)
		return out, true
	}
	return out, false
}

// start builds the inference service on the shared Base: the bus API, the OpenAI-compatible
// routes on the admin server, its health check, and hot reload of the config file.
func start(_ context.Context, s *service.Setup[inference.Config]) ([]lifecycle.Service, error) {
	base, cfg := s.Base, s.Config
	env, deprecatedNATS := withDeprecatedEnv(s.Env)
	if deprecatedNATS {
		base.Logger.Warn(envNATSDeprecated + " is deprecated; set MXP_INFERENCE_NATS (or --nats) instead")
	}
	lookup := envLookup(env)
	deps := base.Deps()
	ideps := inference.DepsFrom(deps)
	started := false // the first call is the initial load, not a reload
	ideps.OnReload = func(digest string, err error) {
		// The digest is the service's: the effective config with the providers'
		// environment applied (secrets excluded).
		base.SetDigest(digest)
		if started {
			base.Metrics.ObserveReload(err == nil)
		}
		started = true
	}
	svc, err := inference.New(inference.ApplyEnv(cfg, lookup), ideps)
	if err != nil {
		return nil, err
	}
	svc.Routes(deps.Router)
	deps.Health.Add("inference", svc.HealthCheck)

	// Hot reload: the file (on change and SIGHUP) through the same loader. Accepted live
	// changes reach the service (svc.WatchConfig, counted by OnReload above); rejected
	// files and reloads without a live change are counted here.
	w := config.NewWatcher(s.Loader, cfg, base.Logger)
	w.OnResult(func(res config.ReloadResult, err error) {
		if err != nil || len(res.Changed) == 0 {
			base.Metrics.ObserveReload(err == nil)
		}
	})
	w.OnChange(func(_, c *inference.Config) {
		if lv, err := mlog.ParseLevel(c.LogLevel); err == nil {
			base.Level.Set(lv)
		}
	})
	svc.WatchConfig(w, lookup)
	base.Logger.Info("mxp-inference started", "version", inference.Version, "http", cfg.HTTP,
		"providers", svc.Ready().Providers, "config_file", s.Loader.FilePath())
	return []lifecycle.Service{svc, lifecycle.Func{N: "config-watcher", F: w.Run}}, nil
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
