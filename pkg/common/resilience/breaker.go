package resilience

import (
	"errors"
	"time"

	"github.com/sony/gobreaker/v2"
)

// Breaker defaults: what a zero BreakerSettings field means.
const (
	DefaultConsecutiveFailures = 5
	DefaultFailureRate         = 0.5
	DefaultMinRequests         = 20
	DefaultInterval            = 60 * time.Second
	DefaultOpenTimeout         = 30 * time.Second
	DefaultHalfOpenRequests    = 1
)

// BreakerSettings configure NewBreaker and NewTwoStepBreaker. Zero values mean the
// documented defaults.
//
// The breaker opens (trips) when ConsecutiveFailures failures come in a row, or when at
// least MinRequests requests were counted in the current Interval and the share of
// failures among them reaches FailureRate. After OpenTimeout it lets HalfOpenRequests
// probes through; their success closes it, a failure opens it again.
type BreakerSettings struct {
	// ConsecutiveFailures in a row open the breaker. Default 5.
	ConsecutiveFailures uint32 `yaml:"consecutive_failures" reload:"live"`
	// FailureRate in (0, 1] opens the breaker once MinRequests were counted. Default 0.5;
	// a negative value turns the rate trip off (consecutive failures only).
	FailureRate float64 `yaml:"failure_rate" reload:"live"`
	// MinRequests counted in Interval before FailureRate applies. Default 20.
	MinRequests uint32 `yaml:"min_requests" reload:"live"`
	// Interval clears the closed-state counts periodically. Default 60s; a negative value
	// never clears them.
	Interval time.Duration `yaml:"interval" reload:"live"`
	// OpenTimeout is how long the breaker stays open before a half-open probe. Default 30s.
	OpenTimeout time.Duration `yaml:"open_timeout" reload:"live"`
	// HalfOpenRequests may pass while half-open. Default 1.
	HalfOpenRequests uint32 `yaml:"half_open_requests" reload:"live"`
	// IsSuccessful classifies errors (nil means only err == nil is success). Errors that
	// are the caller's fault (a bad request) should count as success so they do not trip.
	IsSuccessful func(err error) bool `yaml:"-" json:"-"`
	// IsExcluded errors count neither way (a caller's cancellation). Nil excludes none.
	IsExcluded func(err error) bool `yaml:"-" json:"-"`
	// OnStateChange is called on every transition (for logs and metrics), with the
	// breaker's lock held: it must not call back into the breaker.
	OnStateChange func(name string, from, to gobreaker.State) `yaml:"-" json:"-"`
}

// WithDefaults returns s with its zero fields set to the documented defaults.
func (s BreakerSettings) WithDefaults() BreakerSettings {
	if s.ConsecutiveFailures == 0 {
		s.ConsecutiveFailures = DefaultConsecutiveFailures
	}
	if s.FailureRate == 0 {
		s.FailureRate = DefaultFailureRate
	}
	if s.MinRequests == 0 {
		s.MinRequests = DefaultMinRequests
	}
	if s.Interval == 0 {
		s.Interval = DefaultInterval
	}
	if s.OpenTimeout <= 0 {
		s.OpenTimeout = DefaultOpenTimeout
	}
	if s.HalfOpenRequests == 0 {
		s.HalfOpenRequests = DefaultHalfOpenRequests
	}
	return s
}

// ReadyToTrip is the trip policy of s (after defaults): consecutive failures, or the
// failure rate over at least MinRequests.
func (s BreakerSettings) ReadyToTrip(c gobreaker.Counts) bool {
	s = s.WithDefaults()
	if c.ConsecutiveFailures >= s.ConsecutiveFailures {
		return true
	}
	if s.FailureRate < 0 || c.Requests == 0 || c.Requests < s.MinRequests {
		return false
	}
	return float64(c.TotalFailures)/float64(c.Requests) >= s.FailureRate
}

// Gobreaker returns the gobreaker.Settings for a breaker named name.
func (s BreakerSettings) Gobreaker(name string) gobreaker.Settings {
	s = s.WithDefaults()
	interval := s.Interval
	if interval < 0 {
		interval = 0 // gobreaker: never clear
	}
	return gobreaker.Settings{
		Name:          name,
		MaxRequests:   s.HalfOpenRequests,
		Interval:      interval,
		Timeout:       s.OpenTimeout,
		ReadyToTrip:   s.ReadyToTrip,
		IsSuccessful:  s.IsSuccessful,
		IsExcluded:    s.IsExcluded,
		OnStateChange: s.OnStateChange,
	}
}

// NewBreaker returns a circuit breaker named name that wraps calls (Execute).
func NewBreaker[T any](name string, s BreakerSettings) *gobreaker.CircuitBreaker[T] {
	return gobreaker.NewCircuitBreaker[T](s.Gobreaker(name))
}

// NewTwoStepBreaker returns a circuit breaker named name whose Allow admits a call and
// hands back a done(err) to report its outcome later — for streams, whose outcome is
// known only when the last chunk has been read.
func NewTwoStepBreaker[T any](name string, s BreakerSettings) *gobreaker.TwoStepCircuitBreaker[T] {
	return gobreaker.NewTwoStepCircuitBreaker[T](s.Gobreaker(name))
}

// IsOpen reports whether err is a breaker refusing a call (open, or too many half-open).
func IsOpen(err error) bool {
	return errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests)
}
