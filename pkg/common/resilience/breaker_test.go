package resilience

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"
)

func TestReadyToTrip(t *testing.T) {
	tests := []struct {
		name   string
		s      BreakerSettings
		counts gobreaker.Counts
		want   bool
	}{
		{"defaults: 4 in a row", BreakerSettings{}, gobreaker.Counts{Requests: 4, TotalFailures: 4, ConsecutiveFailures: 4}, false},
		{"defaults: 5 in a row", BreakerSettings{}, gobreaker.Counts{Requests: 5, TotalFailures: 5, ConsecutiveFailures: 5}, true},
		{"defaults: rate below min requests", BreakerSettings{}, gobreaker.Counts{Requests: 19, TotalFailures: 18, ConsecutiveFailures: 1}, false},
		{"defaults: rate at 50% of 20", BreakerSettings{}, gobreaker.Counts{Requests: 20, TotalFailures: 10, ConsecutiveFailures: 1}, true},
		{"defaults: rate 45% of 20", BreakerSettings{}, gobreaker.Counts{Requests: 20, TotalFailures: 9, ConsecutiveFailures: 1}, false},
		{"custom consecutive", BreakerSettings{ConsecutiveFailures: 2}, gobreaker.Counts{Requests: 2, TotalFailures: 2, ConsecutiveFailures: 2}, true},
		{"custom rate", BreakerSettings{FailureRate: 0.2, MinRequests: 10}, gobreaker.Counts{Requests: 10, TotalFailures: 2, ConsecutiveFailures: 1}, true},
		{"rate off", BreakerSettings{FailureRate: -1}, gobreaker.Counts{Requests: 100, TotalFailures: 90, ConsecutiveFailures: 4}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.s.ReadyToTrip(tc.counts); got != tc.want {
				t.Fatalf("ReadyToTrip(%+v) = %v, want %v", tc.counts, got, tc.want)
			}
		})
	}
}

func TestWithDefaults(t *testing.T) {
	s := BreakerSettings{}.WithDefaults()
	want := BreakerSettings{ConsecutiveFailures: 5, FailureRate: 0.5, MinRequests: 20, Interval: time.Minute,
		OpenTimeout: 30 * time.Second, HalfOpenRequests: 1}
	if s.ConsecutiveFailures != want.ConsecutiveFailures || s.FailureRate != want.FailureRate || s.MinRequests != want.MinRequests ||
		s.Interval != want.Interval || s.OpenTimeout != want.OpenTimeout || s.HalfOpenRequests != want.HalfOpenRequests {
		t.Fatalf("defaults %+v", s)
	}
	if g := (BreakerSettings{Interval: -1}).Gobreaker("x"); g.Interval != 0 {
		t.Fatalf("negative interval must mean never clear, got %v", g.Interval)
	}
}

// transitions records state changes.
type transitions struct {
	mu sync.Mutex
	to []gobreaker.State
}

func (tr *transitions) record(_ string, _, to gobreaker.State) {
	tr.mu.Lock()
	tr.to = append(tr.to, to)
	tr.mu.Unlock()
}

func (tr *transitions) get() []gobreaker.State {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]gobreaker.State(nil), tr.to...)
}

// waitHalfOpen polls until the breaker leaves the open state (its OpenTimeout is short);
// nothing is asserted about how long that took.
func waitHalfOpen(t *testing.T, state func() gobreaker.State) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for state() == gobreaker.StateOpen {
		if time.Now().After(deadline) {
			t.Fatal("breaker never left the open state")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestBreaker(t *testing.T) {
	var tr transitions
	cb := NewBreaker[int]("provider", BreakerSettings{
		ConsecutiveFailures: 2, OpenTimeout: 10 * time.Millisecond, OnStateChange: tr.record,
	})
	fail := func() (int, error) { return 0, errTemp }
	cb.Execute(fail)
	cb.Execute(fail)
	if _, err := cb.Execute(func() (int, error) { return 1, nil }); !IsOpen(err) {
		t.Fatalf("breaker not open: %v", err)
	}
	waitHalfOpen(t, cb.State)
	if v, err := cb.Execute(func() (int, error) { return 7, nil }); err != nil || v != 7 {
		t.Fatalf("half-open probe: %v %v", v, err)
	}
	want := []gobreaker.State{gobreaker.StateOpen, gobreaker.StateHalfOpen, gobreaker.StateClosed}
	if got := tr.get(); len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("transitions %v, want %v", got, want)
	}
}

var errBadRequest = errors.New("bad request")

func TestTwoStepBreaker(t *testing.T) {
	tests := []struct {
		name     string
		outcomes []error // reported through done, in order
		wantOpen bool
	}{
		{"failure rate trips", []error{nil, errTemp, nil, errTemp, nil, errTemp}, true},
		{"below the rate", []error{nil, nil, errTemp, nil, nil, errTemp}, false},
		{"caller errors count as success", []error{errTemp, errTemp, errBadRequest, errTemp}, false},
		{"excluded errors do not break a run of failures", []error{errTemp, errTemp, errExcluded, errTemp}, true},
		{"consecutive failures trip before min requests", []error{errTemp, errTemp, errTemp}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var tr transitions
			cb := NewTwoStepBreaker[struct{}]("stream", BreakerSettings{
				ConsecutiveFailures: 3, FailureRate: 0.5, MinRequests: 6, OpenTimeout: time.Hour,
				IsSuccessful:  func(err error) bool { return err == nil || errors.Is(err, errBadRequest) },
				IsExcluded:    func(err error) bool { return errors.Is(err, errExcluded) },
				OnStateChange: tr.record,
			})
			for _, o := range tc.outcomes {
				done, err := cb.Allow()
				if err != nil {
					t.Fatalf("refused before the last outcome: %v", err)
				}
				done(o)
			}
			_, err := cb.Allow()
			if got := IsOpen(err); got != tc.wantOpen {
				t.Fatalf("open = %v (err %v, counts %+v), want %v", got, err, cb.Counts(), tc.wantOpen)
			}
			if tc.wantOpen && (len(tr.get()) != 1 || tr.get()[0] != gobreaker.StateOpen) {
				t.Fatalf("transitions %v", tr.get())
			}
		})
	}
}

var errExcluded = errors.New("canceled")

func TestTwoStepBreakerHalfOpenProbe(t *testing.T) {
	var tr transitions
	cb := NewTwoStepBreaker[struct{}]("stream", BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: 10 * time.Millisecond,
		OnStateChange: tr.record})
	done, _ := cb.Allow()
	done(errTemp)
	waitHalfOpen(t, cb.State)
	probe, err := cb.Allow()
	if err != nil {
		t.Fatalf("probe refused: %v", err)
	}
	if _, err := cb.Allow(); !errors.Is(err, gobreaker.ErrTooManyRequests) {
		t.Fatalf("second half-open call: %v, want too many requests", err)
	}
	probe(nil)
	if cb.State() != gobreaker.StateClosed {
		t.Fatalf("state %v after a good probe", cb.State())
	}
}

func BenchmarkTwoStepBreakerAllow(b *testing.B) {
	cb := NewTwoStepBreaker[struct{}]("bench", BreakerSettings{})
	b.ReportAllocs()
	for b.Loop() {
		done, err := cb.Allow()
		if err != nil {
			b.Fatal(err)
		}
		done(nil)
	}
}
