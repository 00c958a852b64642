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

// Reasons of mxp_edge_dropped_frames_total added for hardening (the older ones are
// spelled where they are counted).
const (
	dropAgentsPerAddress = "agents_per_address" // an AgentRegister over Limits.MaxAgentsPerAddress (answered rate_limited)
	dropDatagram         = "datagram"           // a frame that came as an unreliable datagram (answered invalid_frame when the rate allows)
	dropCompressed       = "compressed"         // a frame with the COMPRESSED flag (answered invalid_payload)
	dropSendBufferFull   = "send_buffer_full"   // a frame the edge sent from the transport's read loop (the answer to a datagram) found the connection's send buffer full
)

// metrics are the edge's Prometheus series (mxp_edge_*).
type metrics struct {
	frames            *prometheus.CounterVec   // type, direction, outcome (ok or an error code)
	sessions          *prometheus.GaugeVec     // transport
	sessionsTotal     *prometheus.CounterVec   // transport
	handshakeFailures *prometheus.CounterVec   // transport, reason
	packetsDropped    *prometheus.CounterVec   // transport, reason: data_auth, replay, unknown_index, malformed
	datagramsDropped  *prometheus.CounterVec   // transport, direction
	pendingHandshakes *prometheus.GaugeVec     // transport
	dropped           *prometheus.CounterVec   // reason: rate_limited, queue_full, too_many_peers, agents_per_address, datagram, compressed, send_buffer_full, ...
	peerCloses        *prometheus.CounterVec   // transport, reason: unreachable, idle, peer_closed, closed, error
	orphanedCalls     prometheus.Counter       // Calls delivered to a peer whose connection closed before it answered
	refusedAnswers    *prometheus.CounterVec   // code: answers to delivered Calls refused (compressed, too large, datagram); the caller failed at once
	route             *prometheus.HistogramVec // type
	inflight          prometheus.Gauge
	agents            prometheus.Gauge
	streams           prometheus.Gauge
	subscriptions     prometheus.Gauge
	recvDropped       *prometheus.CounterVec // transport, reason (budget): data packets dropped unacknowledged
	recvEvictions     *prometheus.CounterVec // transport: connections closed over a stalled receive budget
	recvHeld          *prometheus.GaugeVec   // transport: bytes held in reassembly and receive queues

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
			Help: "Handshake packets dropped or refused, by transport and reason (mac1, auth, replayed_initiation, peer_refused, queue_full, rate_limited_source, rate_limited_key, max_connections, max_pending, max_connections_per_source, max_pending_per_source)."},
			[]string{"transport", "reason"}),
		packetsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "packets_dropped_total",
			Help: "Secure transport packets dropped outside the handshake, by transport and reason (data_auth: failed authentication, replay, unknown_index: no such session, malformed)."},
			[]string{"transport", "reason"}),
		datagramsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "datagrams_dropped_total",
			Help: "Unreliable datagrams dropped because a connection's datagram queue was full, by transport and direction (in, out)."},
			[]string{"transport", "direction"}),
		pendingHandshakes: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "pending_handshakes",
			Help: "Connections answered but not yet confirmed by their first data packet, by transport."}, []string{"transport"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "dropped_frames_total",
			Help: "Frames not handled, by reason (rate_limited, queue_full, too_many_peers, stream_gap, stream_slow_peer, agents_per_address, datagram, compressed, send_buffer_full)."}, []string{"reason"}),
		peerCloses: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "peer_closes_total",
			Help: "Connections ended, by transport and reason (unreachable: the peer stopped answering or was refused; idle; peer_closed: the peer said goodbye; closed: the edge closed it; error)."},
			[]string{"transport", "reason"}),
		orphanedCalls: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "orphaned_calls_total",
			Help: "Calls delivered to an agent whose connection ended before it answered; each caller got Error unreachable at once."}),
		refusedAnswers: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "refused_answers_total",
			Help: "Answers to delivered Calls that the edge refused (compressed: invalid_payload, over the size limit: too_large, sent as a datagram: invalid_frame or the decode error's code), by code; each caller got that Error at once."},
			[]string{"code"}),
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
		recvDropped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "transport_recv_dropped_total",
			Help: "Data packets and datagrams the secure transport dropped unacknowledged because they did not fit in recv_budget_bytes (or the out-of-order fragment limit); the sender retransmits."},
			[]string{"transport", "reason"}),
		recvEvictions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "transport_recv_evictions_total",
			Help: "Connections the secure transport closed (CLOSE code 6, receive budget) because recv_budget_bytes stayed full while data was refused and nothing was released for a second: each time, the connection holding the most."},
			[]string{"transport"}),
		recvHeld: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "transport_recv_held_bytes",
			Help: "Bytes the secure transport holds now in reassembly and receive queues, against recv_budget_bytes."}, []string{"transport"}),
	}
	reg.MustRegister(m.frames, m.sessions, m.sessionsTotal, m.handshakeFailures, m.packetsDropped, m.datagramsDropped,
		m.pendingHandshakes, m.dropped, m.peerCloses, m.orphanedCalls, m.refusedAnswers, m.route,
		m.inflight, m.agents, m.streams, m.subscriptions, m.recvDropped, m.recvEvictions, m.recvHeld)
	return m
}

// HandshakeFailed counts a refused handshake; the secure transport reports through it.
func (e *Edge) HandshakeFailed(transport, reason string) {
	e.m.handshakeFailures.WithLabelValues(transport, reason).Inc()
}

// registerQueues exports the depths of e's delivery queues as gauges read at scrape time
// (the hot paths keep no extra counter for them):
//   - mxp_edge_agent_messages_queued: Calls, probes and stream opens from the bus for
//     carried agents, waiting for the edge's agent workers (bounded at 65,536);
//   - mxp_edge_deliveries_queued: Calls taken from the bus and waiting to be handed to a
//     secure peer (each session's delivery queue, the one being sent included; bounded
//     per session by limits.max_in_flight);
//   - mxp_edge_frames_queued: frames received on the plaintext transport and waiting for
//     their session's loop (bounded per session by limits.queue_frames).
func (m *metrics) registerQueues(reg prometheus.Registerer, e *Edge) {
	const ns, sub = "mxp", "edge"
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "agent_messages_queued",
			Help: "Calls, probes and stream opens from the bus for carried agents waiting for the edge's agent workers."},
			func() float64 { return float64(len(e.agentMsgs)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "deliveries_queued",
			Help: "Calls waiting to be handed to secure peers (the sessions' delivery queues)."},
			func() float64 {
				n, _ := e.queueDepths()
				return float64(n)
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "frames_queued",
			Help: "Frames received on the plaintext transport waiting for their session's loop."},
			func() float64 {
				_, n := e.queueDepths()
				return float64(n)
			}),
	)
}

// queueDepths sums the sessions' delivery queues and received-frame queues.
func (e *Edge) queueDepths() (deliveries, frames int64) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	for _, s := range e.sessions {
		deliveries += s.delivering.Load()
		if s.queue != nil {
			frames += int64(s.queue.len())
		}
	}
	return deliveries, frames
}
