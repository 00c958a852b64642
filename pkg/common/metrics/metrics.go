// Package metrics gives each service its own Prometheus registry (with the Go and process
// collectors and an info metric carrying the config digest) and the admin HTTP server on
// a chi router: /metrics, /livez, /readyz, /debug/pprof, plus the routes a service mounts
// itself (the registry's /v1/agents, the inference OpenAI API).
//
// It must not register metrics on the global default registry: two services in one
// process (mxp dev) each own a registry. Metric names follow Prometheus conventions
// (mxp_<service>_..., _total for counters, _seconds and _bytes in base units).
package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Namespace prefixes every mesh metric.
const Namespace = "mxp"

// Registry is one service's Prometheus registry.
type Registry struct {
	*prometheus.Registry
	service string

	mu         sync.Mutex
	configInfo *prometheus.GaugeVec
	lastDigest string
	reloads    *prometheus.CounterVec
}

// NewRegistry returns a registry for service with the Go and process collectors and the
// config metrics (mxp_config_info{service,digest}, mxp_config_reloads_total{result}).
func NewRegistry(service string) *Registry {
	r := &Registry{Registry: prometheus.NewRegistry(), service: service}
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	r.configInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "config_info",
		Help: "Always 1; the digest label is the SHA-256 of the effective config (secrets excluded), for drift detection.",
	}, []string{"service", "digest"})
	r.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "config_reloads_total",
		Help: "Config reloads by result (ok, rejected).",
	}, []string{"service", "result"})
	r.MustRegister(r.configInfo, r.reloads)
	return r
}

// ForService returns a view of r for another service of the same process (pkg/common/
// service.Process: several services, one /metrics): the metrics it registers land in r,
// and its config digest and reloads carry service="name" in mxp_config_info and
// mxp_config_reloads_total.
func (r *Registry) ForService(name string) *Registry {
	return &Registry{Registry: r.Registry, service: name, configInfo: r.configInfo, reloads: r.reloads}
}

// Service is the service name the registry was made for.
func (r *Registry) Service() string { return r.service }

// SetConfigDigest replaces the config_info series with one for digest.
func (r *Registry) SetConfigDigest(digest string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lastDigest != "" {
		r.configInfo.DeleteLabelValues(r.service, r.lastDigest)
	}
	r.configInfo.WithLabelValues(r.service, digest).Set(1)
	r.lastDigest = digest
}

// ObserveReload counts a config reload.
func (r *Registry) ObserveReload(ok bool) {
	res := "ok"
	if !ok {
		res = "rejected"
	}
	r.reloads.WithLabelValues(r.service, res).Inc()
}
