package transport

import (
	"testing"
	"time"
)

func TestRTTEstimatorRFC6298(t *testing.T) {
	var r rttEstimator
	r.init()
	if r.rto() != InitialRTT+4*InitialRTT/2+MaxAckDelay {
		t.Fatalf("initial rto %v", r.rto())
	}
	r.update(40*time.Millisecond, 0)
	if r.srtt != 40*time.Millisecond || r.rttvar != 20*time.Millisecond {
		t.Fatalf("first sample: srtt %v rttvar %v", r.srtt, r.rttvar)
	}
	r.update(80*time.Millisecond, 0)
	// RTTVAR = 3/4·20 + 1/4·|40−80| = 25 ms; SRTT = 7/8·40 + 1/8·80 = 45 ms.
	if r.rttvar != 25*time.Millisecond || r.srtt != 45*time.Millisecond {
		t.Fatalf("second sample: srtt %v rttvar %v", r.srtt, r.rttvar)
	}
	if want := 45*time.Millisecond + 100*time.Millisecond + MaxAckDelay; r.rto() != want {
		t.Fatalf("rto %v, want %v", r.rto(), want)
	}
	r.update(50*time.Millisecond, 5*time.Millisecond) // ack delay subtracted (stays above min RTT)
	if r.latest != 50*time.Millisecond {
		t.Fatalf("latest %v", r.latest)
	}
	var tiny rttEstimator
	tiny.init()
	tiny.update(10*time.Microsecond, 0)
	if tiny.rto() != MinRTO {
		t.Fatalf("rto below the floor: %v", tiny.rto())
	}
}

func TestNewReno(t *testing.T) {
	const mss = 1200
	t0 := time.Unix(1000, 0)
	tests := []struct {
		name string
		run  func(n *newReno)
		want func(n *newReno) bool
	}{
		{"initial window", func(*newReno) {}, func(n *newReno) bool { return n.cwnd == InitialWindowPackets*mss }},
		{"slow start doubles per window", func(n *newReno) {
			for range InitialWindowPackets {
				n.inFlight += mss
				n.onAck(mss, t0.Add(time.Second))
			}
		}, func(n *newReno) bool { return n.cwnd == 2*InitialWindowPackets*mss && n.inFlight == 0 }},
		{"one halving per recovery period", func(n *newReno) {
			n.onLoss(t0.Add(time.Second), t0.Add(2*time.Second))
			n.onLoss(t0.Add(time.Second), t0.Add(2*time.Second)) // sent before the cut: ignored
		}, func(n *newReno) bool { return n.cwnd == InitialWindowPackets*mss/2 && n.ssthresh == n.cwnd }},
		{"no growth for packets sent before the cut", func(n *newReno) {
			n.onLoss(t0.Add(time.Second), t0.Add(2*time.Second))
			c := n.cwnd
			n.inFlight += mss
			n.onAck(mss, t0.Add(time.Second))
			if n.cwnd != c {
				n.cwnd = -1
			}
		}, func(n *newReno) bool { return n.cwnd == InitialWindowPackets*mss/2 }},
		{"congestion avoidance adds one packet per window", func(n *newReno) {
			n.onLoss(t0.Add(time.Second), t0.Add(2*time.Second))
			w := n.cwnd
			for range w / mss {
				n.inFlight += mss
				n.onAck(mss, t0.Add(3*time.Second))
			}
		}, func(n *newReno) bool {
			return n.cwnd >= InitialWindowPackets*mss/2+mss-mss/2 && n.cwnd <= InitialWindowPackets*mss/2+mss
		}},
		{"timeout collapses to the minimum", func(n *newReno) { n.onRTO(t0) },
			func(n *newReno) bool { return n.cwnd == MinWindowPackets*mss }},
		{"undo restores the window of before a spurious cut", func(n *newReno) {
			n.onLoss(t0.Add(time.Second), t0.Add(2*time.Second))
			n.undo()
		}, func(n *newReno) bool { return n.cwnd == InitialWindowPackets*mss }},
		{"HyStart++ ends slow start when the RTT rises", func(n *newReno) {
			pn := uint64(0)
			for round, rtt := range []time.Duration{time.Millisecond, 20 * time.Millisecond} {
				for range HyStartMinSamples {
					pn++
					n.onRTTSample(rtt, pn, uint64(round+1)*100)
				}
				pn = uint64(round+1) * 100
			}
		}, func(n *newReno) bool { return n.ssthresh == n.cwnd }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n newReno
			n.init(mss)
			tt.run(&n)
			if !tt.want(&n) {
				t.Fatalf("cwnd %d ssthresh %d inFlight %d", n.cwnd, n.ssthresh, n.inFlight)
			}
		})
	}
}

func TestReplayWindow(t *testing.T) {
	tests := []struct {
		name string
		seq  []uint64
		want []bool
	}{
		{"in order", []uint64{0, 1, 2, 3}, []bool{true, true, true, true}},
		{"duplicate", []uint64{5, 5}, []bool{true, false}},
		{"reordered inside the window", []uint64{10, 7, 9, 8, 7}, []bool{true, true, true, true, false}},
		{"too old", []uint64{ReplayWindowSize * 2, 5}, []bool{true, false}},
		{"jump then fill", []uint64{100000, 99999, 100000 - ReplayWindowSize + 100}, []bool{true, true, true}},
		{"reject limit", []uint64{RejectAfterMessages}, []bool{false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w replayWindow
			for i, c := range tt.seq {
				if w.check(c) != tt.want[i] && tt.want[i] {
					t.Fatalf("check(%d) rejected an acceptable counter", c)
				}
				if got := w.accept(c); got != tt.want[i] {
					t.Fatalf("accept(%d) = %v, want %v", c, got, tt.want[i])
				}
			}
		})
	}
}

func TestRangeSet(t *testing.T) {
	tests := []struct {
		name string
		ops  func(r *rangeSet)
		want rangeSet
	}{
		{"append and merge", func(r *rangeSet) { r.add(0, 5); r.add(5, 8); r.add(10, 12) }, rangeSet{{0, 8}, {10, 12}}},
		{"fill a gap", func(r *rangeSet) { r.add(0, 5); r.add(10, 12); r.add(4, 11) }, rangeSet{{0, 12}}},
		{"insert before", func(r *rangeSet) { r.add(10, 12); r.add(0, 2) }, rangeSet{{0, 2}, {10, 12}}},
		{"remove middle", func(r *rangeSet) { r.add(0, 10); r.remove(3, 5) }, rangeSet{{0, 3}, {5, 10}}},
		{"remove below", func(r *rangeSet) { r.add(0, 3); r.add(5, 10); r.removeBelow(6) }, rangeSet{{6, 10}}},
		{"trim", func(r *rangeSet) { r.add(0, 1); r.add(2, 3); r.add(4, 5); r.trimTo(2) }, rangeSet{{2, 3}, {4, 5}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r rangeSet
			tt.ops(&r)
			if len(r) != len(tt.want) {
				t.Fatalf("%v, want %v", r, tt.want)
			}
			for i := range r {
				if r[i] != tt.want[i] {
					t.Fatalf("%v, want %v", r, tt.want)
				}
			}
		})
	}
}
