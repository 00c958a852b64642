package edge

import (
	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/common/lifecycle"
	cmetrics "github.com/mxp-mesh/mesh/pkg/common/metrics"
	"github.com/mxp-mesh/mesh/pkg/common/service"
	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// Module is the edge as the module runner (pkg/common/service) runs it: alone as mxp-edge
// (its own flags, file, bus and HTTP server), or as one target of a process that runs
// several (mxp dev, the mesh package's list). Limits, call timeouts and the log level
// reload live (Edge.Reload). New does no I/O; Run loads (or creates) the key file, binds
// the transports and logs their addresses and the public key, then closes Serving.
var Module = service.Define(service.Def[Config]{
	Name:     "edge",
	Version:  mxp.Version,
	Defaults: Defaults,
	Base: func(cfg *Config) service.BaseConfig {
		return service.BaseConfig{
			Bus:             bus.Config{URL: cfg.NATS, Embedded: cfg.EmbeddedNATS},
			HTTP:            cmetrics.ServerConfig{Addr: cfg.HTTP, Pprof: true, Limits: cfg.HTTPLimits},
			LogLevel:        cfg.LogLevel,
			ShutdownTimeout: cfg.ShutdownTimeout,
		}
	},
	Level: func(c *Config) string { return c.LogLevel },
	New: func(s *service.Setup[Config]) (lifecycle.Service, error) {
		base, cfg := s.Base, s.Config
		e, err := New(cfg, Deps{Deps: base.Deps()})
		if err != nil {
			return nil, err
		}
		s.Watcher.OnChange(func(_, c *Config) {
			if err := e.Reload(*c); err != nil {
				base.Logger.Error("config reload rejected", "err", err)
			}
		})
		base.Logger.Info("mxp-edge starting", "version", mxp.Version, "addr", cfg.Addr, "compat_addr", cfg.CompatAddr,
			"edge_id", e.ID(), "http", cfg.HTTP, "config_digest", s.Watcher.Digest(), "config_file", s.Loader.FilePath())
		return e, nil
	},
})
