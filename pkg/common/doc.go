// Package common is the root of the service foundation shared by every MXP mesh service.
// Each subpackage has one job and must not import any service:
//
//	config      layered typed config (defaults, YAML, MXP_<SERVICE>_* env, flags), keyed
//	            errors, SHA-256 digest without secrets, hot reload (file change, SIGHUP)
//	log         slog JSON with service, trace_id, msg_id, agent_id from the context
//	metrics     a Prometheus registry per service; the admin HTTP server (chi) with
//	            /metrics, /livez, /readyz, /debug/pprof and the service's own routes
//	health      named readiness checks and the shutdown gate
//	tracing     OpenTelemetry setup, traceparent over NATS headers, MXP trace id mapping
//	bus         NATS embedded or external, reconnect backoff, drain, every subject and
//	            header of the mesh, typed error replies (micro convention)
//	lifecycle   the runner: signals and the ordered graceful shutdown; InFlight
//	security    Secret, per-key token-bucket Limiter, input Limits
//	resilience  circuit breaker (sony/gobreaker/v2) and retry with full jitter
//	service     Deps for New(cfg, deps); Endpoints (micro with limits, deadlines,
//	            tracing, metrics, drain); Base, which a main uses to set all of it up
//
// A service package exports its Module, and its main is one line (see
// services/registry/module.go and cmd/mxp-registry):
//
//	var Module = service.Define(service.Def[Config]{
//		Name: "mysvc", Defaults: DefaultConfig, Level: func(c *Config) string { return c.LogLevel },
//		Base: func(c *Config) service.BaseConfig { return service.BaseConfig{Bus: ..., HTTP: ...} },
//		New: func(s *service.Setup[Config]) (lifecycle.Service, error) {
//			svc, err := New(s.Config, s.Base.Deps()) // no I/O; Run serves
//			s.Watcher.OnChange(func(_, c *Config) { svc.SetConfig(*c) })
//			return svc, err
//		},
//	})
//	func main() { mysvc.Module.Main() } // flags, layered config, Base, hot reload, runner
//
// The module list (mesh/) runs several Modules in one process with service.StartProcess:
// one bus, one HTTP server, each module's section of one config file.
package common
