// Command mxp-inference runs the inference service alone: the bus API on NATS and the
// OpenAI-compatible HTTP API, with /metrics, /healthz and /readyz beside it.
//
//	mxp-inference -config inference.yaml -http 127.0.0.1:8086 -nats nats://127.0.0.1:4222
//
// Providers turn on from the config file and from OPENAI_API_KEY, ANTHROPIC_API_KEY,
// GEMINI_API_KEY and OLLAMA_HOST (see docs/inference.md). With no -nats URL an embedded
// NATS server is started, which is only useful for trying the HTTP API.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/services/inference"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
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
	flag.Parse()

	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	cfg, err := inference.LoadConfig(*configPath)
	if err != nil {
		return err
	}
	cfg = inference.ApplyEnv(cfg, os.LookupEnv)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	b, err := bus.Connect(bus.Config{URL: *natsURL}, "mxp-inference", logger)
	if err != nil {
		return err
	}
	defer b.Close()

	svc, err := inference.New(cfg, inference.Deps{Logger: logger, Registerer: reg, Conn: b.Conn})
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *configPath != "" {
		go svc.WatchConfig(ctx, *configPath)
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		go func() {
			for range hup {
				svc.ReloadFile(*configPath)
			}
		}()
	}

	r := chi.NewRouter()
	svc.Routes(r)
	r.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	r.Get("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		rd := svc.Ready()
		w.Header().Set("Content-Type", "application/json")
		if !rd.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(rd)
	})
	hs := &http.Server{Addr: *httpAddr, Handler: r, ReadHeaderTimeout: 10 * time.Second}
	httpErr := make(chan error, 1)
	go func() { httpErr <- hs.ListenAndServe() }()
	logger.Info("mxp-inference started", "http", *httpAddr, "providers", svc.Ready().Providers)

	runErr := make(chan error, 1)
	go func() { runErr <- svc.Run(ctx) }()
	select {
	case err := <-httpErr:
		stop()
		<-runErr
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = hs.Shutdown(shutdownCtx)
	if rerr := <-runErr; rerr != nil {
		err = errors.Join(err, rerr)
	}
	return err
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
