package inference

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	api "github.com/mxp-mesh/mesh/pkg/api/inference"
	"github.com/mxp-mesh/mesh/pkg/common/config"
	"github.com/mxp-mesh/mesh/pkg/common/lifecycle"
	cmetrics "github.com/mxp-mesh/mesh/pkg/common/metrics"
	"github.com/mxp-mesh/mesh/pkg/common/resilience"
	"github.com/mxp-mesh/mesh/pkg/common/security"
	"github.com/mxp-mesh/mesh/pkg/common/service"
	"github.com/mxp-mesh/mesh/services/inference/upstream"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
)

// Version is reported by the bus service ($SRV.INFO).
const Version = "0.1.0"

// Deps are what the service is given rather than builds. Every field is optional.
type Deps struct {
	Logger *slog.Logger
	// Registerer receives the metrics. Default: Metrics, else a private registry.
	Registerer prometheus.Registerer
	// Metrics is the service registry (pkg/common/metrics) the bus endpoints' metrics go
	// to. Default: a private one.
	Metrics *cmetrics.Registry
	// Tracer creates spans. Default: one from TracerProvider.
	Tracer trace.Tracer
	// TracerProvider is used when Tracer is nil. Default: the global OpenTelemetry provider.
	TracerProvider trace.TracerProvider
	// Conn, when set, makes Run serve the bus API on it.
	Conn *nats.Conn
	// HTTPClient is used for every upstream call. Default: a client on upstream.Transport
	// (HTTP/1.1, request and response on the caller's goroutine, keep-alive pools sized
	// for a gateway) with no overall timeout (contexts bound each call).
	HTTPClient *http.Client
	// Adapters replaces the adapter of a provider by name (tests, embedding).
	Adapters map[string]api.ModelAdapter
	// Sleep waits between retries (resilience.Policy.Sleep). Default: a timer that stops
	// early when ctx ends. Tests inject virtual time here.
	Sleep func(ctx context.Context, d time.Duration) error
	// Rand returns a uniform number in [0, 1) that scales the full-jitter backoff
	// (resilience.Policy.Rand). Default math/rand/v2.
	Rand func() float64
	// OnReload, when set, is told the outcome of every Reload: the digest of the config
	// now running (pkg/common/config.Digest, secrets excluded) and the error of a
	// rejected config. Mains use it for mxp_config_info and mxp_config_reloads_total.
	OnReload func(digest string, err error)
}

// DepsFrom maps the shared service dependencies (pkg/common/service, as cmd/mxp-inference
// and `mxp dev` build them) to the inference service's.
func DepsFrom(d service.Deps) Deps {
	return Deps{Logger: d.Logger, Conn: d.Conn, Tracer: d.Tracer, Metrics: d.Metrics}
}

// Name implements lifecycle.Service.
func (s *Service) Name() string { return "inference" }

// HealthCheck is a pkg/common/health check: it fails with the reason (and the breakers
// that are not closed) when Ready says the service cannot serve its default model.
func (s *Service) HealthCheck(context.Context) error {
	r := s.Ready()
	if r.Ready {
		return nil
	}
	var open []string
	for _, b := range r.Breakers {
		if b.State != "closed" {
			open = append(open, b.Provider+"/"+b.Model+" "+b.State)
		}
	}
	if len(open) > 0 {
		return fmt.Errorf("%s (breakers: %s)", r.Reason, strings.Join(open, ", "))
	}
	return errors.New(r.Reason)
}

// Service is the inference service. It is safe for concurrent use.
type Service struct {
	deps   Deps
	log    *slog.Logger
	m      *metrics
	tracer trace.Tracer
	routes atomic.Pointer[routes]
	// endpoints is set while the bus API is served (for live limit updates).
	endpoints atomic.Pointer[service.Endpoints]
}

// New builds a Service from cfg. Providers are enabled by cfg.Providers (see ApplyEnv
// for the environment). It does no I/O.
func New(cfg Config, deps Deps) (*Service, error) {
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.Metrics == nil {
		deps.Metrics = cmetrics.NewRegistry("inference")
	}
	if deps.Registerer == nil {
		deps.Registerer = deps.Metrics
	}
	if deps.TracerProvider == nil {
		deps.TracerProvider = otel.GetTracerProvider()
	}
	if deps.HTTPClient == nil {
		deps.HTTPClient = &http.Client{Transport: &upstream.Transport{
			MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second}}
	}
	if deps.Sleep == nil {
		deps.Sleep = resilience.Sleep
	}
	if deps.Tracer == nil {
		deps.Tracer = deps.TracerProvider.Tracer("github.com/mxp-mesh/mesh/services/inference")
	}
	s := &Service{deps: deps, log: deps.Logger.With("service", "inference"), m: newMetrics(deps.Registerer),
		tracer: deps.Tracer}
	if err := s.Reload(cfg); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload swaps in a new configuration atomically. Requests in flight finish on the old
// one; providers whose config did not change keep their breakers and in-flight limits.
// On error the old configuration stays.
func (s *Service) Reload(cfg Config) error {
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = 4 << 20
	}
	if cfg.MaxBusInflight <= 0 {
		cfg.MaxBusInflight = 1024
	}
	if cfg.BusRequestTimeout <= 0 {
		cfg.BusRequestTimeout = defaultBusRequestTimeout
	}
	if cfg.DefaultModel == "" {
		cfg.DefaultModel = "mock"
	}
	// Provider keys (from the file or their own variables) and client keys are
	// scrubbed from every text that leaves the service, before any is used.
	security.RegisterSecretsIn(&cfg)
	r, err := buildRoutes(cfg, &s.deps, s.m, s.routes.Load())
	if err != nil {
		if s.deps.OnReload != nil {
			s.deps.OnReload(s.digest(), err)
		}
		return err
	}
	s.routes.Store(r)
	if s.deps.OnReload != nil {
		s.deps.OnReload(s.digest(), nil)
	}
	if ep := s.endpoints.Load(); ep != nil {
		ep.SetLimits(s.busLimits())
	}
	for name, mc := range cfg.Models {
		for _, fb := range mc.Fallbacks {
			if _, err := r.resolve(fb); err != nil {
				s.log.Warn("fallback not available; it will be skipped", "model", name, "fallback", fb, "error", err)
			}
		}
	}
	names := make([]string, 0, len(r.providers))
	for n := range r.providers {
		names = append(names, n)
	}
	sort.Strings(names)
	s.log.Info("inference config loaded", "providers", names, "models", len(cfg.Models), "default_model", cfg.DefaultModel)
	return nil
}

// digest is the config digest of the running configuration ("" before the first).
func (s *Service) digest() string {
	r := s.routes.Load()
	if r == nil {
		return ""
	}
	return config.Digest(r.cfg)
}

// Config returns the configuration in use.
func (s *Service) Config() Config { return s.routes.Load().cfg }

// Run serves the bus API when Deps.Conn is set and blocks until ctx ends, then stops
// taking requests and lets those in flight finish within their own deadlines.
func (s *Service) Run(ctx context.Context) error {
	if s.deps.Conn == nil {
		<-ctx.Done()
		return nil
	}
	stop, err := s.serveBus(s.deps.Conn)
	if err != nil {
		return err
	}
	<-ctx.Done()
	dctx, cancel := lifecycle.DrainContext(ctx)
	defer cancel()
	err = stop(dctx)
	s.endpoints.Store(nil)
	return err
}

// ModelInfo describes one model callers may name.
type ModelInfo struct {
	ID            string `json:"id"`
	Provider      string `json:"provider"`
	AliasOf       string `json:"alias_of,omitempty"`
	ContextWindow int    `json:"context_window,omitempty"`
}

// hostedLookupTimeout bounds the registry query that lists hosted models (ListModels).
const hostedLookupTimeout = 2 * time.Second

// ListModels is Models plus the models agents host, when the mxp provider is on: each
// online agent's "model.<model>" capability as "mxp/<agent-name>/<model>" (provider mxp),
// from one registry query bounded by ctx and 2 s. When the registry does not answer, the
// configured models alone are listed (and the failure logged).
func (s *Service) ListModels(ctx context.Context) []ModelInfo {
	out := s.Models()
	r := s.routes.Load()
	for _, ps := range r.providers {
		h, ok := ps.adapter.(*Hosted)
		if !ok {
			continue
		}
		ctx, cancel := context.WithTimeout(ctx, hostedLookupTimeout)
		names, err := h.Served(ctx)
		cancel()
		if err != nil {
			s.log.Warn("listing hosted models: the registry did not answer", "error", err)
			continue
		}
		known := make(map[string]bool, len(out))
		for _, m := range out {
			known[m.ID] = true
		}
		for _, n := range names {
			if !known[n] {
				out = append(out, ModelInfo{ID: n, Provider: ps.name})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Models lists configured models and aliases whose provider is enabled, sorted by id.
func (s *Service) Models() []ModelInfo {
	r := s.routes.Load()
	var out []ModelInfo
	for name := range r.cfg.Models {
		if t, err := r.resolve(name); err == nil {
			out = append(out, ModelInfo{ID: name, Provider: t.prov.name, ContextWindow: t.model.ContextWindow})
		}
	}
	for alias, to := range r.cfg.Aliases {
		if t, err := r.resolve(alias); err == nil {
			out = append(out, ModelInfo{ID: alias, Provider: t.prov.name, AliasOf: to, ContextWindow: t.model.ContextWindow})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Readiness is the /readyz detail of the service.
type Readiness struct {
	Ready     bool            `json:"ready"`
	Providers []string        `json:"providers"`
	Breakers  []BreakerStatus `json:"breakers"`
	Reason    string          `json:"reason,omitempty"`
}

// Ready reports whether the default model can be served: at least one model of its
// fallback chain resolves and its breaker is not open. Detail lists every breaker.
func (s *Service) Ready() Readiness {
	r := s.routes.Load()
	out := Readiness{Breakers: r.breakerStatus()}
	for n := range r.providers {
		out.Providers = append(out.Providers, n)
	}
	sort.Strings(out.Providers)
	chain, err := r.chain(r.cfg.DefaultModel)
	if err != nil {
		out.Reason = err.Error()
		return out
	}
	for _, t := range chain {
		if t.breaker(s.m).State().String() != "open" {
			out.Ready = true
			return out
		}
	}
	out.Reason = "every breaker of the default model's chain is open"
	return out
}
