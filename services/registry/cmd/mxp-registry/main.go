// Command mxp-registry runs the MXP mesh registry service alone.
//
//	mxp-registry [--config FILE] [--nats URL] [--store memory|redis://host:port/db]
//	             [--http ADDR] [--lease D] [--log-level L]
//
// Every setting is also a YAML key in the config file and an MXP_REGISTRY_* environment
// variable (flags win over the environment, which wins over the file); `--help` lists
// them. With no --nats an embedded NATS server is started on a random loopback port.
// The config file is reloaded on change and on SIGHUP; SIGINT/SIGTERM shut down
// gracefully (readiness false, intake stops, in-flight requests drain, the bus drains).
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
	"github.com/mxp-mesh/mesh/services/registry"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process: exit code 0 on a clean shutdown, 2 for bad
// configuration, 1 for a failure while running.
func run(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("mxp-registry", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: mxp-registry [flags]\n\nflags:")
		fs.PrintDefaults()
		fmt.Fprintln(stderr, "\nconfig keys (YAML key, environment variable, live = reloaded without restart):")
		for _, k := range config.Keys[registry.Config](registry.Name) {
			live := ""
			if k.Live {
				live = "live"
			}
			fmt.Fprintf(stderr, "  %-32s %-44s %s\n", k.Key, k.Env, live)
		}
	}
	loader := &config.Loader[registry.Config]{Service: registry.Name, Defaults: registry.DefaultConfig, Args: args, FlagSet: fs}
	cfg, err := loader.Load()
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "mxp-registry:", err)
		return 2
	}
	base, err := service.NewBase(ctx, service.BaseConfig{
		Service: registry.Name, Version: registry.Version,
		Bus:             bus.Config{URL: cfg.NATS, Embedded: cfg.EmbeddedNATS},
		HTTP:            metrics.ServerConfig{Addr: cfg.HTTP, Pprof: true},
		LogLevel:        cfg.LogLevel,
		LogWriter:       stderr,
		ShutdownTimeout: cfg.ShutdownTimeout,
	})
	if err != nil {
		fmt.Fprintln(stderr, "mxp-registry:", err)
		return 1
	}
	svc, err := registry.New(ctx, cfg, base.Deps())
	if err != nil {
		base.Logger.Error("registry failed to start", "err", err)
		base.Conn.Close()
		if base.Bus != nil {
			base.Bus.Close()
		}
		return 1
	}
	w := service.WatchConfig(base, loader, cfg,
		func(c *registry.Config) string { return c.LogLevel },
		func(_, c *registry.Config) { svc.SetConfig(*c) })
	natsAt := "embedded"
	if base.Bus != nil && base.Bus.Server != nil {
		natsAt = "embedded " + base.Bus.Server.ClientURL()
	} else if cfg.NATS != "" {
		natsAt = base.Conn.ConnectedUrlRedacted()
	}
	base.Logger.Info("mxp-registry starting", "version", registry.Version, "nats", natsAt,
		"store", svc.Store().Kind(), "http", cfg.HTTP, "lease", cfg.Lease, "config_digest", w.Digest(),
		"config_file", loader.FilePath())
	runner, err := base.Runner(svc)
	if err != nil {
		base.Logger.Error("start failed", "err", err)
		return 1
	}
	if err := runner.Run(ctx); err != nil {
		base.Logger.Error("stopped with error", "err", err)
		return 1
	}
	return 0
}
