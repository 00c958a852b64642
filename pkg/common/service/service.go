// Package service is the glue a mesh service is built from: Def and Module (a service as
// the module runner sees it: run alone as its binary, or with others in one Process),
// Base (logs, tracing, metrics, health, bus, HTTP), Deps (what New(cfg, deps) receives:
// logger, bus connection, metrics registry, health checker, HTTP router, tracer) and
// Endpoints, a nats.go micro service whose handlers get, for free, the
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
// gets them from Base.Deps: its own process's (a binary, Module.Main) or its share of a
// process that runs several (Process: mxp dev; one metrics registry, health checker and
// router, a bus connection and tracer each). Only Conn is required; WithDefaults fills
// the rest.
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
