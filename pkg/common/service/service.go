// Package service is the glue a mesh service is built from: Deps (what New(cfg, deps)
// receives: logger, bus connection, metrics registry, health checker, HTTP router,
// tracer) and Endpoints, a nats.go micro service whose handlers get, for free, the
// mesh's request discipline: intake that closes on shutdown, input size limits, per-agent
// rate limits, the caller's deadline, trace context from headers, log fields, typed error
// replies and per-endpoint metrics.
//
// It must not hold any service's logic; a service supplies handlers.
package service

import (
	"log/slog"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/mxp-mesh/mesh/pkg/common/health"
	"github.com/mxp-mesh/mesh/pkg/common/metrics"
)

// Deps are the shared resources a service is constructed with: New(cfg, deps). A service
// binary gets them from Base.Deps (service.Program builds the Base from the service's
// BaseConfig: its own registry, tracer and bus connection). `mxp dev` (cmd/mxp/dev.go)
// builds them by hand instead: one metrics registry, health checker and router shared by
// every service, a bus connection each, and no tracer. Only Conn is required; WithDefaults
// fills the rest.
type Deps struct {
	Logger  *slog.Logger
	Conn    *nats.Conn        // the service's own bus connection
	Metrics *metrics.Registry // the service's registry
	Health  *health.Checker
	Router  chi.Router // routes mounted beside /metrics; nil when HTTP is off
	Tracer  trace.Tracer
}

// WithDefaults fills nil logger, metrics, health and tracer so tests can pass only Conn.
func (d Deps) WithDefaults(name string) Deps {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Metrics == nil {
		d.Metrics = metrics.NewRegistry(name)
	}
	if d.Health == nil {
		d.Health = health.NewChecker(nil)
	}
	if d.Tracer == nil {
		d.Tracer = noop.NewTracerProvider().Tracer(name)
	}
	return d
}
