// Command mxp-inference runs the inference service alone: the bus API on NATS, and the
// OpenAI-compatible HTTP API on the admin server beside /metrics, /livez, /readyz and
// /debug/pprof (pkg/common/service.Base).
//
//	mxp-inference -config inference.yaml -http 127.0.0.1:8086 -nats nats://127.0.0.1:4222
//
// Providers turn on from the config file and from OPENAI_API_KEY, ANTHROPIC_API_KEY,
// GEMINI_API_KEY and OLLAMA_HOST (see docs/inference.md). With no -nats URL an embedded
// NATS server is started, which is only useful for trying the HTTP API. The config file
// is reloaded when it changes and on SIGHUP.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/common/lifecycle"
	"github.com/mxp-mesh/mesh/pkg/common/metrics"
	"github.com/mxp-mesh/mesh/pkg/common/service"
	"github.com/mxp-mesh/mesh/services/inference"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "mxp-inference:", err)
		os.Exit(1)
	}
}

func run() error {
	configPath := flag.String("config", os.Getenv("MXP_INFERENCE_CONFIG"), "YAML config file (reloaded when it changes)")
	httpAddr := flag.String("http", envOr("MXP_INFERENCE_HTTP", "127.0.0.1:8086"), "HTTP listen address (OpenAI-compatible API, metrics, health)")
	natsURL := flag.String("nats", os.Getenv("MXP_NATS_URL"), "NATS URL; empty starts an embedded server")
	logLevel := flag.String("log-level", envOr("MXP_LOG_LEVEL", "info"), "debug, info, warn or error")
	flag.Parse()

	cfg, err := inference.LoadConfig(*configPath)
	if err != nil {
		return err
	}
	cfg = inference.ApplyEnv(cfg, os.LookupEnv)

	ctx := context.Background()
	base, err := service.NewBase(ctx, service.BaseConfig{
		Service: "inference", Version: inference.Version, Bus: bus.Config{URL: *natsURL},
		HTTP: metrics.ServerConfig{Addr: *httpAddr, Pprof: true}, LogLevel: *logLevel,
	})
	if err != nil {
		return err
	}
	deps := base.Deps()
	ideps := inference.DepsFrom(deps)
	started := false // the first call is the initial load, not a reload
	ideps.OnReload = func(digest string, err error) {
		base.SetDigest(digest)
		if started {
			base.Metrics.ObserveReload(err == nil)
		}
		started = true
	}
	svc, err := inference.New(cfg, ideps)
	if err != nil {
		return err
	}
	svc.Routes(deps.Router)
	deps.Health.Add("inference", svc.HealthCheck)

	services := []lifecycle.Service{svc}
	if *configPath != "" {
		services = append(services, lifecycle.Func{N: "config-watch", F: func(ctx context.Context) error {
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			go func() {
				for {
					select {
					case <-ctx.Done():
						return
					case <-hup:
						svc.ReloadFile(*configPath)
					}
				}
			}()
			return svc.WatchConfig(ctx, *configPath)
		}})
	}
	runner, err := base.Runner(services...)
	if err != nil {
		return err
	}
	base.Logger.Info("mxp-inference started", "http", *httpAddr, "providers", svc.Ready().Providers)
	return runner.Run(ctx)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
