package edge

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// Directions and outcomes of the frames metric.
const (
	dirIn  = "in"
	dirOut = "out"

	outcomeOK = "ok"
)

// metrics are the edge's Prometheus series (mxp_edge_*).
type metrics struct {
	frames            *prometheus.CounterVec   // type, direction, outcome (ok or an error code)
	sessions          *prometheus.GaugeVec     // transport
	sessionsTotal     *prometheus.CounterVec   // transport
	handshakeFailures *prometheus.CounterVec   // transport, reason
	dropped           *prometheus.CounterVec   // reason: rate_limited, replay, queue_full, too_many_peers
	route             *prometheus.HistogramVec // type
	inflight          prometheus.Gauge
	agents            prometheus.Gauge
	streams           prometheus.Gauge
	subscriptions     prometheus.Gauge

	// The series the hot path touches on every frame, resolved once per message type
	// (lazily, so a type never seen exports no series): looking a series up by its label
	// values hashes them, which cost more than the count itself.
	framesOK [2][256]atomic.Pointer[prometheus.Counter] // [dirIn=0, dirOut=1][type]
	routeBy  [256]atomic.Pointer[prometheus.Observer]
}

// frameOK counts one frame of type t in direction dir with outcome ok.
func (m *metrics) frameOK(t mxp.MessageType, dir string) {
	i := 0
	if dir == dirOut {
		i = 1
	}
	slot := &m.framesOK[i][t]
	c := slot.Load()
	if c == nil {
		series := m.frames.WithLabelValues(t.String(), dir, outcomeOK)
		c = &series
		slot.Store(c)
	}
	(*c).Inc()
}

// observeRoute records the routing time of a frame of type t.
func (m *metrics) observeRoute(t mxp.MessageType, seconds float64) {
	slot := &m.routeBy[t]
	o := slot.Load()
	if o == nil {
		series := m.route.WithLabelValues(t.String())
		o = &series
		slot.Store(o)
	}
	(*o).Observe(seconds)
}

func newMetrics(reg prometheus.Registerer) *metrics {
	const ns, sub = "mxp", "edge"
	m := &metrics{
		frames: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "frames_total",
			Help: "MXP frames by type, direction (in, out) and outcome (ok, or the error code a rejected frame was answered with)."},
			[]string{"type", "direction", "outcome"}),
		sessions: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "sessions",
			Help: "Connections open now, by transport."}, []string{"transport"}),
		sessionsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "sessions_total",
			Help: "Connections opened, by transport."}, []string{"transport"}),
		handshakeFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "handshake_failures_total",
			Help: "Handshakes refused, by transport and reason."}, []string{"transport", "reason"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "dropped_frames_total",
			Help: "Frames not handled, by reason (rate_limited, queue_full, replay, too_many_peers)."}, []string{"reason"}),
		route: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "route_seconds",
			Help:    "Time from a frame's arrival to its answer (Call, register, heartbeat, discover) or its hand-off to the bus (Event, stream).",
			Buckets: []float64{25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 1, 5, 30}},
			[]string{"type"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "inflight_calls",
			Help: "Calls (and registry requests) sent to the bus and not yet answered."}),
		agents: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "agents",
			Help: "Agents registered over this edge's connections."}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "streams",
			Help: "Stream ends open on this edge."}),
		subscriptions: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "topic_subscriptions",
			Help: "Event topic subscriptions of this edge's connections."}),
	}
	reg.MustRegister(m.frames, m.sessions, m.sessionsTotal, m.handshakeFailures, m.dropped, m.route,
		m.inflight, m.agents, m.streams, m.subscriptions)
	return m
}

// HandshakeFailed counts a refused handshake; the secure transport reports through it.
func (e *Edge) HandshakeFailed(transport, reason string) {
	e.m.handshakeFailures.WithLabelValues(transport, reason).Inc()
}
