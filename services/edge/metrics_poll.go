package edge

import (
	"github.com/prometheus/client_golang/prometheus"
)

// pollTransportStats turns the secure transport's counters into the edge's metrics: each
// transport counter feeds exactly one series, so that a tampered data packet (data_auth)
// is never counted as a failed handshake (auth).
func (e *Edge) pollTransportStats() {
	for _, t := range e.transports() {
		st, ok := t.(*SecureTransport)
		if !ok {
			continue
		}
		cur := st.Stats()
		prev := st.last
		st.last = cur
		name := st.Name()
		add := func(vec *prometheus.CounterVec, label string, now, before uint64) {
			if now > before {
				vec.WithLabelValues(name, label).Add(float64(now - before))
			}
		}
		hs := e.m.handshakeFailures
		add(hs, "mac1", cur.MAC1Failures, prev.MAC1Failures)
		add(hs, "auth", cur.HandshakeAuthFailed, prev.HandshakeAuthFailed)
		add(hs, "replayed_initiation", cur.InitiationsReplayed, prev.InitiationsReplayed)
		add(hs, "peer_refused", cur.PeersRefused, prev.PeersRefused)
		add(hs, "queue_full", cur.HandshakesDropped, prev.HandshakesDropped)
		add(hs, "rate_limited_source", cur.RateLimitedSource, prev.RateLimitedSource)
		add(hs, "rate_limited_key", cur.RateLimitedKey, prev.RateLimitedKey)
		add(hs, "max_connections", cur.RefusedMaxConnections, prev.RefusedMaxConnections)
		add(hs, "max_pending", cur.RefusedMaxPending, prev.RefusedMaxPending)
		add(hs, "max_connections_per_source", cur.RefusedSourceConns, prev.RefusedSourceConns)
		add(hs, "max_pending_per_source", cur.RefusedSourcePending, prev.RefusedSourcePending)
		pk := e.m.packetsDropped
		add(pk, "data_auth", cur.DataAuthFailed, prev.DataAuthFailed)
		add(pk, "replay", cur.DataReplayed, prev.DataReplayed)
		add(pk, "unknown_index", cur.UnknownIndex, prev.UnknownIndex)
		add(pk, "malformed", cur.Malformed, prev.Malformed)
		add(e.m.datagramsDropped, dirIn, cur.DatagramsDroppedIn, prev.DatagramsDroppedIn)
		add(e.m.datagramsDropped, dirOut, cur.DatagramsDroppedOut, prev.DatagramsDroppedOut)
		e.m.pendingHandshakes.WithLabelValues(name).Set(float64(cur.PendingHandshakes))
		add(e.m.recvDropped, "budget", cur.RecvBudgetDrops, prev.RecvBudgetDrops)
		if cur.RecvBudgetEvictions > prev.RecvBudgetEvictions {
			e.m.recvEvictions.WithLabelValues(name).Add(float64(cur.RecvBudgetEvictions - prev.RecvBudgetEvictions))
		}
		e.m.recvHeld.WithLabelValues(name).Set(float64(cur.RecvHeld))
	}
}
