package resilience_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mxp-mesh/mesh/pkg/common/resilience"
	"github.com/sony/gobreaker/v2"
)

// Retry with full jitter in virtual time: Sleep records the waits, Rand picks the cap.
func ExampleRetry() {
	var waits []time.Duration
	p := resilience.Policy{
		MaxAttempts: 4, Initial: 100 * time.Millisecond,
		Sleep: func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil },
		Rand:  func() float64 { return 1 },
	}
	calls := 0
	err := resilience.Retry(context.Background(), p, func(context.Context) error {
		if calls++; calls < 4 {
			return errors.New("503")
		}
		return nil
	})
	fmt.Println(calls, waits, err)
	// Output: 4 [100ms 200ms 400ms] <nil>
}

// A two-step breaker admits a stream with Allow and learns its outcome when it ends.
func ExampleNewTwoStepBreaker() {
	cb := resilience.NewTwoStepBreaker[struct{}]("openai/gpt-4o", resilience.BreakerSettings{
		ConsecutiveFailures: 2,
		OnStateChange: func(name string, from, to gobreaker.State) {
			fmt.Println(name, from, "->", to)
		},
	})
	for range 2 {
		done, _ := cb.Allow()
		done(errors.New("stream broke"))
	}
	_, err := cb.Allow()
	fmt.Println(resilience.IsOpen(err))
	// Output:
	// openai/gpt-4o closed -> open
	// true
}
