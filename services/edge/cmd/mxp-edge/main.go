// Command mxp-edge runs the MXP edge alone: it terminates MXP connections from agents (the
// secure UDP transport, and the plaintext listener of the reference SDK when
// --compat-addr is set) and joins them to the mesh bus.
//
//	mxp-edge [--config FILE] [--nats URL] [--addr :9000] [--key-file FILE]
//	         [--compat-addr 127.0.0.1:9001] [--http ADDR] [--log-level L]
//
// Every setting is also a YAML key and an MXP_EDGE_* environment variable (flags win over
// the environment, which wins over the file); --help lists them. The key file is created
// with a new key when missing; the public key is logged at start. The config file is
// reloaded on change and on SIGHUP (limits and timeouts apply live); SIGINT/SIGTERM shut
// down gracefully (readiness false, connections closed, their agents deregistered).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/common/config"
	"github.com/mxp-mesh/mesh/pkg/common/metrics"
	"github.com/mxp-mesh/mesh/pkg/common/service"
	"github.com/mxp-mesh/mesh/pkg/mxp"
	"github.com/mxp-mesh/mesh/services/edge"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process: 0 on a clean shutdown, 2 for bad configuration, 1 for
// a failure while running.
func run(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("mxp-edge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: mxp-edge [flags]\n\nflags:")
		fs.PrintDefaults()
		fmt.Fprintln(stderr, "\nconfig keys (YAML key, environment variable, live = reloaded without restart):")
		for _, k := range config.Keys[edge.Config]("edge") {
			live := ""
			if k.Live {
				live = "live"
			}
			fmt.Fprintf(stderr, "  %-32s %-44s %s\n", k.Key, k.Env, live)
		}
	}
	loader := &config.Loader[edge.Config]{Service: "edge", Defaults: edge.Defaults, Args: args, FlagSet: fs}
	cfg, err := loader.Load()
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "mxp-edge:", err)
		return 2
	}
	base, err := service.NewBase(ctx, service.BaseConfig{
		Service: "edge", Version: mxp.Version,
		Bus:             bus.Config{URL: cfg.NATS, Embedded: cfg.EmbeddedNATS},
		HTTP:            metrics.ServerConfig{Addr: cfg.HTTP, Pprof: true},
		LogLevel:        cfg.LogLevel,
		LogWriter:       stderr,
		ShutdownTimeout: cfg.ShutdownTimeout,
	})
	if err != nil {
		fmt.Fprintln(stderr, "mxp-edge:", err)
		return 1
	}
	e, err := edge.New(cfg, edge.Deps{Deps: base.Deps()})
	if err != nil {
		base.Logger.Error("edge failed to start", "err", err)
		base.Conn.Close()
		if base.Bus != nil {
			base.Bus.Close()
		}
		return 1
	}
	w := service.WatchConfig(base, loader, cfg,
		func(c *edge.Config) string { return c.LogLevel },
		func(_, c *edge.Config) {
			if err := e.Reload(*c); err != nil {
				base.Logger.Error("config reload rejected", "err", err)
			}
		})
	base.Logger.Info("mxp-edge starting", "version", mxp.Version, "addrs", e.Addrs(), "public_key", e.PublicKey(),
		"edge_id", e.ID(), "http", cfg.HTTP, "config_digest", w.Digest(), "config_file", loader.FilePath())
	runner, err := base.Runner(e)
	if err != nil {
		base.Logger.Error("start failed", "err", err)
		return 1
	}
	// The runner handles SIGINT/SIGTERM itself (the first drains, a second forces); main's
	// context is cancelled by the same signal, which the runner would take for a second
	// one. So only a plain cancellation of ctx (tests) reaches the runner.
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRun()
	go func() {
		select {
		case <-ctx.Done():
			if context.Cause(ctx) == ctx.Err() { // not a signal (that has its own cause)
				stopRun()
			}
		case <-runCtx.Done():
		}
	}()
	if err := runner.Run(runCtx); err != nil {
		base.Logger.Error("stopped with error", "err", err)
		return 1
	}
	return 0
}
