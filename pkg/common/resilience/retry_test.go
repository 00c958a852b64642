package resilience

import (
	"context"
	"errors"
	"testing"
	"time"
)

var errTemp = errors.New("temporary")

type retryAfter struct{ d time.Duration }

func (r retryAfter) Error() string             { return "429" }
func (r retryAfter) RetryAfter() time.Duration { return r.d }

// virtualClock records the waits Retry asks for and returns at once (or fails with err).
type virtualClock struct {
	waits []time.Duration
	err   error
}

func (v *virtualClock) sleep(ctx context.Context, d time.Duration) error {
	v.waits = append(v.waits, d)
	if v.err != nil {
		return v.err
	}
	return ctx.Err()
}

func TestRetry(t *testing.T) {
	errCut := errors.New("clock stopped")
	tests := []struct {
		name      string
		results   []error
		policy    Policy
		rand      float64
		sleepErr  error
		wantCalls int
		wantErr   []error // each must match errors.Is; nil means success
		waits     []time.Duration
	}{
		{"success first", []error{nil}, Policy{}, 0.5, nil, 1, nil, nil},
		{"success after two", []error{errTemp, errTemp, nil}, Policy{MaxAttempts: 5}, 0.5, nil, 3, nil,
			[]time.Duration{50 * time.Millisecond, 100 * time.Millisecond}},
		{"full jitter at the cap", []error{errTemp, errTemp, errTemp, nil}, Policy{MaxAttempts: 5, Max: 300 * time.Millisecond}, 1, nil, 4, nil,
			[]time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond}},
		{"full jitter at zero", []error{errTemp, nil}, Policy{}, 0, nil, 2, nil, []time.Duration{0}},
		{"attempts run out", []error{errTemp, errTemp, errTemp}, Policy{MaxAttempts: 3}, 0.5, nil, 3, []error{errTemp},
			[]time.Duration{50 * time.Millisecond, 100 * time.Millisecond}},
		{"default three attempts", []error{errTemp, errTemp, errTemp}, Policy{}, 0.5, nil, 3, []error{errTemp},
			[]time.Duration{50 * time.Millisecond, 100 * time.Millisecond}},
		{"permanent stops", []error{Permanent(errTemp)}, Policy{}, 0.5, nil, 1, []error{errTemp}, nil},
		{"not retryable", []error{errTemp}, Policy{Retryable: func(error) bool { return false }}, 0.5, nil, 1, []error{errTemp}, nil},
		{"retry-after honoured", []error{retryAfter{7 * time.Second}, nil}, Policy{}, 0.5, nil, 2, nil, []time.Duration{7 * time.Second}},
		{"retry-after too long", []error{retryAfter{time.Hour}}, Policy{}, 0.5, nil, 1, []error{retryAfter{time.Hour}}, nil},
		{"retry-after by hook", []error{errTemp, nil}, Policy{RetryAfter: func(error) time.Duration { return 3 * time.Second }}, 0.5, nil, 2, nil,
			[]time.Duration{3 * time.Second}},
		{"retry-after over a custom bound", []error{retryAfter{2 * time.Second}}, Policy{MaxRetryAfter: time.Second}, 0.5, nil, 1,
			[]error{retryAfter{2 * time.Second}}, nil},
		{"sleep cut short", []error{errTemp, nil}, Policy{}, 0.5, errCut, 1, []error{errTemp, errCut}, []time.Duration{50 * time.Millisecond}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			clock := &virtualClock{err: tc.sleepErr}
			var retried []int
			p := tc.policy
			p.Sleep = clock.sleep
			p.Rand = func() float64 { return tc.rand }
			p.OnRetry = func(attempt int, _ time.Duration, _ error) { retried = append(retried, attempt) }
			err := Retry(context.Background(), p, func(context.Context) error {
				r := tc.results[calls]
				calls++
				return r
			})
			if calls != tc.wantCalls {
				t.Fatalf("calls = %d, want %d", calls, tc.wantCalls)
			}
			if tc.wantErr == nil && err != nil {
				t.Fatalf("err = %v, want nil", err)
			}
			for _, want := range tc.wantErr {
				if !errors.Is(err, want) {
					t.Fatalf("err = %v, want it to match %v", err, want)
				}
			}
			if len(clock.waits) != len(tc.waits) {
				t.Fatalf("waits %v, want %v", clock.waits, tc.waits)
			}
			for i := range tc.waits {
				if clock.waits[i] != tc.waits[i] {
					t.Fatalf("waits %v, want %v", clock.waits, tc.waits)
				}
				if retried[i] != i+1 {
					t.Fatalf("OnRetry attempts %v", retried)
				}
			}
		})
	}
}

func TestRetryDoesNotOutliveDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	calls := 0
	clock := &virtualClock{}
	err := Retry(ctx, Policy{MaxAttempts: 100, Initial: time.Hour, Max: time.Hour, Sleep: clock.sleep, Rand: func() float64 { return 1 }},
		func(context.Context) error {
			calls++
			return errTemp
		})
	if calls != 1 || !errors.Is(err, errTemp) || len(clock.waits) != 0 {
		t.Fatalf("calls=%d err=%v waits=%v: must not wait past the deadline", calls, err, clock.waits)
	}
}

func TestRetryRealSleepStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := Retry(ctx, Policy{MaxAttempts: 3, Initial: time.Hour, Max: time.Hour, Rand: func() float64 { return 1 }},
		func(context.Context) error {
			calls++
			cancel() // the wait that follows must end with the context
			return errTemp
		})
	if calls != 1 || !errors.Is(err, errTemp) || !errors.Is(err, context.Canceled) {
		t.Fatalf("calls=%d err=%v", calls, err)
	}
}

func TestBackoffFullJitterBounds(t *testing.T) {
	p := Policy{Initial: 10 * time.Millisecond, Max: 80 * time.Millisecond}
	for attempt := 1; attempt < 10; attempt++ {
		limit := min(10*time.Millisecond<<(attempt-1), 80*time.Millisecond)
		if c := p.Cap(attempt); c != limit {
			t.Fatalf("attempt %d: cap %v, want %v", attempt, c, limit)
		}
		for range 100 {
			if d := p.Backoff(attempt); d < 0 || d > limit {
				t.Fatalf("attempt %d: %v not in [0,%v]", attempt, d, limit)
			}
		}
	}
}

func BenchmarkRetrySuccess(b *testing.B) {
	ctx := context.Background()
	fn := func(context.Context) error { return nil }
	b.ReportAllocs()
	for b.Loop() {
		_ = Retry(ctx, Policy{}, fn)
	}
}

func BenchmarkRetryTwoFailures(b *testing.B) {
	ctx := context.Background()
	p := Policy{Sleep: func(context.Context, time.Duration) error { return nil }}
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		_ = Retry(ctx, p, func(context.Context) error {
			if n++; n < 3 {
				return errTemp
			}
			return nil
		})
	}
}
