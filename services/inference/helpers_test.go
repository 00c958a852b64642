package inference

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	api "github.com/mxp-mesh/mesh/pkg/api/inference"
	"github.com/prometheus/client_golang/prometheus"
)

// virtualSleep records requested waits and returns at once: retry timing is asserted on
// the recorded durations, never on the wall clock.
type virtualSleep struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (v *virtualSleep) sleep(ctx context.Context, d time.Duration) error {
	v.mu.Lock()
	v.waits = append(v.waits, d)
	v.mu.Unlock()
	return ctx.Err()
}

func (v *virtualSleep) recorded() []time.Duration {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]time.Duration(nil), v.waits...)
}

type testEnv struct {
	svc   *Service
	sleep *virtualSleep
	reg   *prometheus.Registry
}

// newTestService builds a service with virtual sleep and jitter that always picks the cap
// (so waits are deterministic).
func newTestService(t testing.TB, cfg Config, adapters map[string]api.ModelAdapter) *testEnv {
	t.Helper()
	vs := &virtualSleep{}
	reg := prometheus.NewRegistry()
	svc, err := New(cfg, Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: reg,
		Adapters: adapters, Sleep: vs.sleep, Rand: func() float64 { return 1 }})
	if err != nil {
		t.Fatal(err)
	}
	return &testEnv{svc: svc, sleep: vs, reg: reg}
}

func userMsg(text string) []api.Message {
	return []api.Message{{Role: api.RoleUser, Content: text}}
}

func chatReq(model, text string) *ChatRequest {
	return &ChatRequest{Request: api.Request{Model: model, Messages: userMsg(text)}}
}

// metricValue sums the series of a metric that match labels (0 when absent).
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue metric
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			case m.Histogram != nil:
				sum += float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return sum
}

func eq[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s: got %v, want %v", what, got, want)
	}
}
