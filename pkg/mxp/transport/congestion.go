package transport

import "time"

// rttEstimator follows RFC 6298 (SRTT, RTTVAR, RTO), with the peer's reported ACK delay
// subtracted as RFC 9002 §5.3 does.
type rttEstimator struct {
	srtt, rttvar, latest, minRTT time.Duration
	has                          bool
}

func (r *rttEstimator) init() { r.srtt, r.rttvar = InitialRTT, InitialRTT/2 }

// update adds one sample from an acknowledged packet.
func (r *rttEstimator) update(sample, ackDelay time.Duration) {
	if sample <= 0 {
		sample = time.Microsecond
	}
	r.latest = sample
	if !r.has || sample < r.minRTT {
		r.minRTT = sample
	}
	if sample-ackDelay >= r.minRTT {
		sample -= ackDelay
	}
	if !r.has {
		r.srtt, r.rttvar, r.has = sample, sample/2, true
		return
	}
	d := r.srtt - sample
	if d < 0 {
		d = -d
	}
	r.rttvar = (3*r.rttvar + d) / 4
	r.srtt = (7*r.srtt + sample) / 8
}

// rto is SRTT + max(G, 4·RTTVAR) + MaxAckDelay (the peer may hold its ACK that long, as
// RFC 9002's PTO accounts for), clamped to [MinRTO, MaxRTO].
func (r *rttEstimator) rto() time.Duration {
	v := r.srtt + max(ClockGranularity, 4*r.rttvar) + MaxAckDelay
	return min(max(v, MinRTO), MaxRTO)
}

// newReno is NewReno congestion control in bytes (RFC 6582, RFC 9002 §7): slow start,
// congestion avoidance, one window reduction per round trip of losses.
type newReno struct {
	mss, cwnd, ssthresh, inFlight int
	recoveryStart                 time.Time
	undoCwnd, undoSsthresh        int

	// HyStart++ (RFC 9406, without the conservative phase): slow start ends when a
	// round's minimum RTT rose by lastRoundMin/8 (clamped to 4..16 ms), before the
	// queues overflow.
	roundEnd            uint64
	roundMin, lastRound time.Duration
	roundSamples        int
}

// onRTTSample feeds HyStart++ with a sample from the ACK of largest; next is the next
// packet number to be sent (it ends the current round).
func (n *newReno) onRTTSample(rtt time.Duration, largest, next uint64) {
	if n.cwnd >= n.ssthresh {
		return
	}
	if largest >= n.roundEnd {
		n.lastRound, n.roundMin, n.roundSamples, n.roundEnd = n.roundMin, 0, 0, next
	}
	n.roundSamples++
	if n.roundMin == 0 || rtt < n.roundMin {
		n.roundMin = rtt
	}
	if n.lastRound == 0 || n.roundSamples < HyStartMinSamples {
		return
	}
	thresh := min(max(n.lastRound/8, HyStartMinThresh), HyStartMaxThresh)
	if n.roundMin >= n.lastRound+thresh {
		n.ssthresh = n.cwnd
	}
}

// maxWindow bounds the congestion window (it never needs to exceed the flow window).
const maxWindow = 64 << 20

func (n *newReno) init(mss int) {
	n.mss = mss
	n.cwnd = InitialWindowPackets * mss
	n.ssthresh = maxWindow
}

func (n *newReno) canSend(size int) bool { return n.inFlight+size <= n.cwnd }

// onAck grows the window for an acknowledged packet of size bytes sent at sentAt.
func (n *newReno) onAck(size int, sentAt time.Time) {
	n.inFlight -= size
	if !sentAt.After(n.recoveryStart) {
		return // sent before the last reduction: no growth during recovery
	}
	if n.cwnd < n.ssthresh {
		n.cwnd += size
	} else {
		n.cwnd += n.mss * size / n.cwnd
	}
	n.cwnd = min(n.cwnd, maxWindow)
}

// onLoss halves the window once per recovery period; it reports whether it did (a new
// recovery episode began). The window before the cut is kept for undo.
func (n *newReno) onLoss(sentAt, now time.Time) bool {
	if !sentAt.After(n.recoveryStart) {
		return false
	}
	n.recoveryStart = now
	n.undoCwnd, n.undoSsthresh = n.cwnd, n.ssthresh
	n.cwnd = max(n.cwnd/2, MinWindowPackets*n.mss)
	n.ssthresh = n.cwnd
	return true
}

// undo restores the window of before the last cut, when every loss of that episode
// proved spurious (Eifel, RFC 4015).
func (n *newReno) undo() {
	if n.undoCwnd > n.cwnd {
		n.cwnd, n.ssthresh = n.undoCwnd, max(n.ssthresh, n.undoSsthresh)
	}
	n.undoCwnd = 0
}

// onRTO collapses the window to the minimum after a retransmission timeout.
func (n *newReno) onRTO(now time.Time) {
	n.recoveryStart = now
	n.undoCwnd = 0
	n.ssthresh = max(n.cwnd/2, MinWindowPackets*n.mss)
	n.cwnd = MinWindowPackets * n.mss
}
