package registry

import (
	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/common/lifecycle"
	"github.com/mxp-mesh/mesh/pkg/common/metrics"
	"github.com/mxp-mesh/mesh/pkg/common/service"
)

// Module is the registry as the module runner (pkg/common/service) runs it: alone as
// mxp-registry (its own flags, file, bus and HTTP server), or as one target of a process
// that runs several (mxp dev, the mesh package's list). The config reloads live (lease,
// heartbeat interval, discovery and metadata limits, request limits, log level).
var Module = service.Define(service.Def[Config]{
	Name:     Name,
	Version:  Version,
	Defaults: DefaultConfig,
	Base: func(cfg *Config) service.BaseConfig {
		return service.BaseConfig{
			Bus:             bus.Config{URL: cfg.NATS, Embedded: cfg.EmbeddedNATS},
			HTTP:            metrics.ServerConfig{Addr: cfg.HTTP, Pprof: true, Limits: cfg.HTTPLimits},
			LogLevel:        cfg.LogLevel,
			ShutdownTimeout: cfg.ShutdownTimeout,
		}
	},
	Level: func(c *Config) string { return c.LogLevel },
	New: func(s *service.Setup[Config]) (lifecycle.Service, error) {
		base, cfg := s.Base, s.Config
		svc, err := New(cfg, base.Deps())
		if err != nil {
			return nil, err
		}
		s.Watcher.OnChange(func(_, c *Config) { svc.SetConfig(*c) })
		natsAt := "shared"
		switch {
		case base.Bus != nil && base.Bus.Server != nil:
			natsAt = "embedded " + base.Bus.Server.ClientURL()
		case base.Bus != nil:
			natsAt = base.Conn.ConnectedUrlRedacted()
		}
		base.Logger.Info("mxp-registry starting", "version", Version, "nats", natsAt,
			"store", svc.Store().Kind(), "http", cfg.HTTP, "lease", cfg.Lease,
			"heartbeat_interval", cfg.EffectiveHeartbeatInterval(), "config_digest", s.Watcher.Digest(),
			"config_file", s.Loader.FilePath())
		return svc, nil
	},
})
