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
	"io"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/common/lifecycle"
	"github.com/mxp-mesh/mesh/pkg/common/metrics"
	"github.com/mxp-mesh/mesh/pkg/common/service"
	"github.com/mxp-mesh/mesh/pkg/mxp"
	"github.com/mxp-mesh/mesh/services/edge"
)

var program = service.Program[edge.Config]{
	Name:     "edge",
	Defaults: edge.Defaults,
	Base: func(cfg *edge.Config) service.BaseConfig {
		return service.BaseConfig{
			Version:         mxp.Version,
			Bus:             bus.Config{URL: cfg.NATS, Embedded: cfg.EmbeddedNATS},
			HTTP:            metrics.ServerConfig{Addr: cfg.HTTP, Pprof: true, Limits: cfg.HTTPLimits},
			LogLevel:        cfg.LogLevel,
			ShutdownTimeout: cfg.ShutdownTimeout,
		}
	},
	Start: func(_ context.Context, s *service.Setup[edge.Config]) ([]lifecycle.Service, error) {
		base, cfg := s.Base, s.Config
		e, err := edge.New(cfg, edge.Deps{Deps: base.Deps()})
		if err != nil {
			return nil, err
		}
		w := service.WatchConfig(base, s.Loader, cfg,
			func(c *edge.Config) string { return c.LogLevel },
			func(_, c *edge.Config) {
				if err := e.Reload(*c); err != nil {
					base.Logger.Error("config reload rejected", "err", err)
				}
			})
		base.Logger.Info("mxp-edge starting", "version", mxp.Version, "addrs", e.Addrs(), "public_key", e.PublicKey(),
			"edge_id", e.ID(), "http", cfg.HTTP, "config_digest", w.Digest(), "config_file", s.Loader.FilePath())
		return []lifecycle.Service{e}, nil
	},
}

func main() { program.Main() }

// run is the program without the process, for tests: the exit status.
func run(ctx context.Context, args []string, stderr io.Writer) int {
	return program.Run(ctx, args, nil, stderr)
}
