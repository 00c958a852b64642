// Command mxp-registry runs the MXP mesh registry service alone.
//
//	mxp-registry [--config FILE] [--nats URL] [--store memory|redis://host:port/db]
//	             [--http ADDR] [--lease D] [--heartbeat-interval D] [--log-level L]
//
// Every setting is also a YAML key in the config file and an MXP_REGISTRY_* environment
// variable (flags win over the environment, which wins over the file); `--help` lists
// them. With no --nats an embedded NATS server is started on a random loopback port.
// The config file is reloaded on change and on SIGHUP; SIGINT/SIGTERM shut down
// gracefully (readiness false, intake stops, in-flight requests drain, the bus drains).
package main

import (
	"context"
	"io"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/common/lifecycle"
	"github.com/mxp-mesh/mesh/pkg/common/metrics"
	"github.com/mxp-mesh/mesh/pkg/common/service"
	"github.com/mxp-mesh/mesh/services/registry"
)

var program = service.Program[registry.Config]{
	Name:     registry.Name,
	Defaults: registry.DefaultConfig,
	Base: func(cfg *registry.Config) service.BaseConfig {
		return service.BaseConfig{
			Version:         registry.Version,
			Bus:             bus.Config{URL: cfg.NATS, Embedded: cfg.EmbeddedNATS},
			HTTP:            metrics.ServerConfig{Addr: cfg.HTTP, Pprof: true, Limits: cfg.HTTPLimits},
			LogLevel:        cfg.LogLevel,
			ShutdownTimeout: cfg.ShutdownTimeout,
		}
	},
	Start: func(ctx context.Context, s *service.Setup[registry.Config]) ([]lifecycle.Service, error) {
		base, cfg := s.Base, s.Config
		svc, err := registry.New(cfg, base.Deps())
		if err != nil {
			return nil, err
		}
		w := service.WatchConfig(base, s.Loader, cfg,
			func(c *registry.Config) string { return c.LogLevel },
			func(_, c *registry.Config) { svc.SetConfig(*c) })
		natsAt := "embedded"
		if base.Bus != nil && base.Bus.Server != nil {
			natsAt = "embedded " + base.Bus.Server.ClientURL()
		} else if cfg.NATS != "" {
			natsAt = base.Conn.ConnectedUrlRedacted()
		}
		base.Logger.Info("mxp-registry starting", "version", registry.Version, "nats", natsAt,
			"store", svc.Store().Kind(), "http", cfg.HTTP, "lease", cfg.Lease,
			"heartbeat_interval", cfg.EffectiveHeartbeatInterval(), "config_digest", w.Digest(),
			"config_file", s.Loader.FilePath())
		return []lifecycle.Service{svc}, nil
	},
}

func main() { program.Main() }

// run is the program without the process, for tests: the exit status.
func run(ctx context.Context, args []string, stderr io.Writer) int {
	return program.Run(ctx, args, nil, stderr)
}
