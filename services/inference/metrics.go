package inference

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the service's Prometheus series. Label values are provider names, model
// names (from config, or the first MaxOpenModels of a provider's prefix-routed names,
// the rest as OtherModels: bounded either way), error codes (a fixed set) and breaker
// states.
type metrics struct {
	requests    *prometheus.CounterVec   // provider, model, code
	duration    *prometheus.HistogramVec // provider, model
	ttft        *prometheus.HistogramVec // provider, model
	tokens      *prometheus.CounterVec   // provider, model, direction
	cost        *prometheus.CounterVec   // provider, model
	retries     *prometheus.CounterVec   // provider, model, code
	fallbacks   *prometheus.CounterVec   // from, to, code
	breaker     *prometheus.GaugeVec     // provider, model
	transitions *prometheus.CounterVec   // provider, model, from, to
	inflight    *prometheus.GaugeVec     // provider
	rejected    *prometheus.CounterVec   // api, code
}

func newMetrics(reg prometheus.Registerer) *metrics {
	lat := []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mxp_inference_calls_total",
			Help: "Model calls by provider, model and result code (ok on success)."}, []string{"provider", "model", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "mxp_inference_call_duration_seconds",
			Help: "Whole-response latency of successful model calls.", Buckets: lat}, []string{"provider", "model"}),
		ttft: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "mxp_inference_time_to_first_token_seconds",
			Help: "Time from request to the first streamed chunk.", Buckets: lat}, []string{"provider", "model"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mxp_inference_tokens_total",
			Help: "Tokens by direction (input, output), from provider usage or the estimate."}, []string{"provider", "model", "direction"}),
		cost: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mxp_inference_cost_usd_total",
			Help: "Estimated cost in USD from the configured price table."}, []string{"provider", "model"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mxp_inference_retries_total",
			Help: "Retries by the error code that caused them."}, []string{"provider", "model", "code"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mxp_inference_fallbacks_total",
			Help: "Fallbacks taken from one model to the next."}, []string{"from", "to", "code"}),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mxp_inference_breaker_state",
			Help: "Circuit breaker state: 0 closed, 1 half-open, 2 open."}, []string{"provider", "model"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mxp_inference_breaker_transitions_total",
			Help: "Circuit breaker state changes."}, []string{"provider", "model", "from", "to"}),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mxp_inference_inflight",
			Help: "Requests in flight per provider."}, []string{"provider"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mxp_inference_rejected_total",
			Help: "Requests refused before reaching a provider, by where (http, bus: unreadable or unauthorised; call: invalid or unroutable) and code."}, []string{"api", "code"}),
	}
	m.requests = register(reg, m.requests)
	m.duration = register(reg, m.duration)
	m.ttft = register(reg, m.ttft)
	m.tokens = register(reg, m.tokens)
	m.cost = register(reg, m.cost)
	m.retries = register(reg, m.retries)
	m.fallbacks = register(reg, m.fallbacks)
	m.breaker = register(reg, m.breaker)
	m.transitions = register(reg, m.transitions)
	m.inflight = register(reg, m.inflight)
	m.rejected = register(reg, m.rejected)
	return m
}

// register adds c to reg; when an equal collector is already there (a second Service on
// the same registry, as after a restart in tests) the existing one is shared.
func register[T prometheus.Collector](reg prometheus.Registerer, c T) T {
	if err := reg.Register(c); err != nil {
		if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
			if existing, ok := are.ExistingCollector.(T); ok {
				return existing
			}
		}
	}
	return c
}
