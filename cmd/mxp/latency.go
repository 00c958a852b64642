package main

import (
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Bounds of the CLI's latency histograms: 1µs to 60s at three significant digits (a
// percentile is within 0.1% of the recorded value).
const (
	latencyMinUS     = 1
	latencyMaxUS     = 60_000_000
	latencySigDigits = 3
)

// latencyUS is the one way the CLI computes latency percentiles (mxp bench, mxp ping): an
// HDR histogram of durations in microseconds. It is not safe for concurrent use; callers
// hold their own lock.
type latencyUS struct{ h *hdrhistogram.Histogram }

func newLatencyUS() latencyUS {
	return latencyUS{hdrhistogram.New(latencyMinUS, latencyMaxUS, latencySigDigits)}
}

// record adds d, clamped to the histogram's range so that no sample is dropped: under
// 1µs counts as 1µs, over 60s as 60s.
func (l latencyUS) record(d time.Duration) {
	_ = l.h.RecordValue(min(max(d.Microseconds(), latencyMinUS), latencyMaxUS))
}

// quantile is the value at percentile q (0 to 100) in microseconds; 0 with no samples.
func (l latencyUS) quantile(q float64) int64 { return l.h.ValueAtQuantile(q) }

// max is the largest recorded value in microseconds (to the histogram's precision); 0
// with no samples.
func (l latencyUS) max() int64 { return l.h.Max() }
