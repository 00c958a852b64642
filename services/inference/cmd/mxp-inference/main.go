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
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

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

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Environ(), os.Stderr)
	stop()
	os.Exit(code)
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

// run is main without the process: exit code 0 on a clean shutdown, 2 for bad
// configuration, 1 for a failure while running.
func run(ctx context.Context, args, environ []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("mxp-inference", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: mxp-inference [flags]\n\nflags:")
		fs.PrintDefaults()
		fmt.Fprintln(stderr, "\nconfig keys (YAML key, environment variable, live = reloaded without restart;")
		fmt.Fprintln(stderr, "providers, models and aliases are maps set in the file):")
		for _, k := range config.Keys[inference.Config](inference.Name) {
			live := ""
			if k.Live {
				live = "live"
			}
			fmt.Fprintf(stderr, "  %-40s %-56s %s\n", k.Key, k.Env, live)
		}
		fmt.Fprintln(stderr, "\nproviders' own variables: OPENAI_API_KEY, OPENAI_BASE_URL, ANTHROPIC_API_KEY,")
		fmt.Fprintln(stderr, "ANTHROPIC_BASE_URL, GEMINI_API_KEY, GEMINI_BASE_URL, OLLAMA_HOST")
	}
	env, deprecatedNATS := withDeprecatedEnv(environ)
	loader := inference.NewLoader(args, fs)
	loader.Env = env
	cfg, err := loader.Load()
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "mxp-inference:", err)
		return 2
	}
	lookup := envLookup(env)
	base, err := service.NewBase(ctx, service.BaseConfig{
		Service: inference.Name, Version: inference.Version, Bus: bus.Config{URL: cfg.NATS},
		HTTP: metrics.ServerConfig{Addr: cfg.HTTP, Pprof: true}, LogLevel: cfg.LogLevel, LogWriter: stderr,
	})
	if err != nil {
		fmt.Fprintln(stderr, "mxp-inference:", err)
		return 1
	}
	if deprecatedNATS {
		base.Logger.Warn(envNATSDeprecated + " is deprecated; set MXP_INFERENCE_NATS (or --nats) instead")
	}
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
		base.Logger.Error("inference failed to start", "err", err)
		base.Conn.Close()
		if base.Bus != nil {
			base.Bus.Close()
		}
		return 1
	}
	svc.Routes(deps.Router)
	deps.Health.Add("inference", svc.HealthCheck)

	// Hot reload: the file (on change and SIGHUP) through the same loader. Accepted live
	// changes reach the service (svc.WatchConfig, counted by OnReload above); rejected
	// files and reloads without a live change are counted here.
	w := config.NewWatcher(loader, cfg, base.Logger)
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

	runner, err := base.Runner(svc, lifecycle.Func{N: "config-watcher", F: w.Run})
	if err != nil {
		base.Logger.Error("start failed", "err", err)
		return 1
	}
	base.Logger.Info("mxp-inference started", "version", inference.Version, "http", cfg.HTTP,
		"providers", svc.Ready().Providers, "config_file", loader.FilePath())
	if err := runner.Run(ctx); err != nil {
		base.Logger.Error("stopped with error", "err", err)
		return 1
	}
	return 0
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
