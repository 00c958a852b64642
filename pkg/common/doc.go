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
// A service main, in outline (see services/registry/cmd/mxp-registry):
//
//	loader := &config.Loader[mysvc.Config]{Service: "mysvc", Defaults: mysvc.DefaultConfig, Args: os.Args[1:]}
//	cfg, err := loader.Load()                       // errors name the bad key
//	base, err := service.NewBase(ctx, service.BaseConfig{Service: "mysvc", Bus: ..., HTTP: ...})
//	svc, err := mysvc.New(cfg, base.Deps())          // mounts routes on deps.Router, endpoints on deps.Conn
//	service.WatchConfig(base, loader, cfg, levelOf, func(_, c *mysvc.Config) { svc.SetConfig(*c) })
//	runner, err := base.Runner(svc)                  // starts HTTP; stop hooks: bus, HTTP, traces, NATS
//	err = runner.Run(ctx)                            // until SIGINT/SIGTERM, then drains in order
package common
