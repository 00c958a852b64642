// Package resilience is what every service that calls out shares: a circuit breaker
// (sony/gobreaker/v2 with mesh defaults) and retry with exponential backoff and full
// jitter that honours a server's Retry-After.
//
// It must not know any provider or protocol: callers classify their errors (Permanent,
// RetryAfter) and the helpers act on that.
package resilience

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/sony/gobreaker/v2"
)

// BreakerSettings configure NewBreaker. Zero values mean the documented defaults.
type BreakerSettings struct {
	// FailureThreshold consecutive failures open the breaker. Default 5.
	FailureThreshold uint32 `yaml:"failure_threshold" reload:"live"`
	// OpenTimeout is how long the breaker stays open before a half-open probe. Default 30s.
	OpenTimeout time.Duration `yaml:"open_timeout" reload:"live"`
	// HalfOpenRequests may pass while half-open. Default 1.
	HalfOpenRequests uint32 `yaml:"half_open_requests" reload:"live"`
	// Interval clears the closed-state counts periodically; 0 never clears.
	Interval time.Duration `yaml:"interval" reload:"live"`
	// IsSuccessful classifies errors (nil means err == nil is success). Errors that are
	// the caller's fault (bad request) should count as success so they do not open it.
	IsSuccessful func(err error) bool `yaml:"-" json:"-"`
	// OnStateChange is called on every transition (for logs and metrics).
	OnStateChange func(name string, from, to gobreaker.State) `yaml:"-" json:"-"`
}

// NewBreaker returns a gobreaker circuit breaker named name.
func NewBreaker[T any](name string, s BreakerSettings) *gobreaker.CircuitBreaker[T] {
	if s.FailureThreshold == 0 {
		s.FailureThreshold = 5
	}
	if s.OpenTimeout == 0 {
		s.OpenTimeout = 30 * time.Second
	}
	if s.HalfOpenRequests == 0 {
		s.HalfOpenRequests = 1
	}
	threshold := s.FailureThreshold
	return gobreaker.NewCircuitBreaker[T](gobreaker.Settings{
		Name:          name,
		MaxRequests:   s.HalfOpenRequests,
		Interval:      s.Interval,
		Timeout:       s.OpenTimeout,
		ReadyToTrip:   func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= threshold },
		IsSuccessful:  s.IsSuccessful,
		OnStateChange: s.OnStateChange,
	})
}

// IsOpen reports whether err is the breaker refusing a call (open or too many half-open).
func IsOpen(err error) bool {
	return errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests)
}

// Policy configures Retry. Zero values mean the documented defaults.
type Policy struct {
	// MaxAttempts including the first. Default 3.
	MaxAttempts int `yaml:"max_attempts" reload:"live"`
	// Initial delay cap before the second attempt. Default 100ms.
	Initial time.Duration `yaml:"initial" reload:"live"`
	// Max delay cap. Default 10s.
	Max time.Duration `yaml:"max" reload:"live"`
	// Multiplier grows the cap each attempt. Default 2.
	Multiplier float64 `yaml:"multiplier" reload:"live"`
	// MaxRetryAfter bounds a server-provided Retry-After; longer waits fail at once.
	// Default 60s.
	MaxRetryAfter time.Duration `yaml:"max_retry_after" reload:"live"`
	// Retryable says whether err is worth retrying (nil means every non-Permanent error).
	Retryable func(err error) bool `yaml:"-" json:"-"`
	// OnRetry is called before each wait (for logs and metrics).
	OnRetry func(attempt int, wait time.Duration, err error) `yaml:"-" json:"-"`

	rand func() float64 // tests
}

func (p Policy) withDefaults() Policy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = 3
	}
	if p.Initial <= 0 {
		p.Initial = 100 * time.Millisecond
	}
	if p.Max <= 0 {
		p.Max = 10 * time.Second
	}
	if p.Multiplier < 1 {
		p.Multiplier = 2
	}
	if p.MaxRetryAfter <= 0 {
		p.MaxRetryAfter = 60 * time.Second
	}
	if p.rand == nil {
		p.rand = rand.Float64
	}
	return p
}

// Backoff is the full-jitter delay before retry number attempt (1 = the first retry):
// uniform in [0, min(Max, Initial·Multiplier^(attempt-1))].
func (p Policy) Backoff(attempt int) time.Duration {
	p = p.withDefaults()
	c := float64(p.Initial)
	for i := 1; i < attempt && c < float64(p.Max); i++ {
		c *= p.Multiplier
	}
	c = min(c, float64(p.Max))
	return time.Duration(p.rand() * c)
}

type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent marks err as not worth retrying; Retry returns err unwrapped.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// RetryAfterError is implemented by errors that carry a server's Retry-After.
type RetryAfterError interface {
	error
	RetryAfter() time.Duration
}

// Retry calls fn until it succeeds, returns a Permanent or non-retryable error, attempts
// run out or ctx ends. A RetryAfterError sets the wait (instead of the jittered backoff)
// when it is within MaxRetryAfter. It returns the last error.
func Retry(ctx context.Context, p Policy, fn func(ctx context.Context) error) error {
	p = p.withDefaults()
	var err error
	for attempt := 1; ; attempt++ {
		err = fn(ctx)
		if err == nil {
			return nil
		}
		var perm permanent
		if errors.As(err, &perm) {
			return perm.err
		}
		if p.Retryable != nil && !p.Retryable(err) {
			return err
		}
		if attempt >= p.MaxAttempts {
			return err
		}
		wait := p.Backoff(attempt)
		var ra RetryAfterError
		if errors.As(err, &ra) && ra.RetryAfter() > 0 {
			if ra.RetryAfter() > p.MaxRetryAfter {
				return err
			}
			wait = ra.RetryAfter()
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return err // waiting would outlive the caller's deadline
		}
		if p.OnRetry != nil {
			p.OnRetry(attempt, wait, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
	}
}
