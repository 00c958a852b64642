package resilience

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Retry defaults: what a zero Policy field means.
const (
	DefaultMaxAttempts   = 3
	DefaultInitial       = 100 * time.Millisecond
	DefaultMax           = 10 * time.Second
	DefaultMultiplier    = 2
	DefaultMaxRetryAfter = 60 * time.Second
)

// Policy configures Retry. Zero values mean the documented defaults.
type Policy struct {
	// MaxAttempts including the first. Default 3.
	MaxAttempts int `yaml:"max_attempts" reload:"live"`
	// Initial is the delay cap before the second attempt. Default 100ms.
	Initial time.Duration `yaml:"initial" reload:"live"`
	// Max caps every delay. Default 10s.
	Max time.Duration `yaml:"max" reload:"live"`
	// Multiplier grows the cap each attempt. Default 2.
	Multiplier float64 `yaml:"multiplier" reload:"live"`
	// MaxRetryAfter bounds a server-provided Retry-After; a longer one ends retrying and
	// Retry returns the error. Default 60s.
	MaxRetryAfter time.Duration `yaml:"max_retry_after" reload:"live"`
	// Retryable says whether err is worth retrying (nil means every non-Permanent error).
	Retryable func(err error) bool `yaml:"-" json:"-"`
	// RetryAfter extracts a server's Retry-After from err (0 for none). Nil means errors
	// implementing RetryAfterError.
	RetryAfter func(err error) time.Duration `yaml:"-" json:"-"`
	// OnRetry is called before each wait, with the attempt that failed (1 = the first),
	// for logs and metrics.
	OnRetry func(attempt int, wait time.Duration, err error) `yaml:"-" json:"-"`
	// Sleep waits d or until ctx ends (returning its error). Nil means a real timer; tests
	// inject virtual time here.
	Sleep func(ctx context.Context, d time.Duration) error `yaml:"-" json:"-"`
	// Rand returns a uniform number in [0, 1) for the jitter. Nil means math/rand/v2.
	Rand func() float64 `yaml:"-" json:"-"`
}

func (p Policy) withDefaults() Policy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.Initial <= 0 {
		p.Initial = DefaultInitial
	}
	if p.Max <= 0 {
		p.Max = DefaultMax
	}
	if p.Multiplier < 1 {
		p.Multiplier = DefaultMultiplier
	}
	if p.MaxRetryAfter <= 0 {
		p.MaxRetryAfter = DefaultMaxRetryAfter
	}
	if p.Rand == nil {
		p.Rand = rand.Float64
	}
	if p.Sleep == nil {
		p.Sleep = Sleep
	}
	if p.RetryAfter == nil {
		p.RetryAfter = retryAfterOf
	}
	return p
}

// schedule is the exponential sequence of caps, Cap(1), Cap(2), ...: cenkalti/backoff's
// ExponentialBackOff without its own jitter (RandomizationFactor 0), so the one backoff
// library of the mesh (the SDK's registrar and reconnects use it too) computes the
// sequence and Retry adds full jitter (Rand) on top. p has its defaults.
func (p Policy) schedule() *backoff.ExponentialBackOff {
	b := &backoff.ExponentialBackOff{InitialInterval: min(p.Initial, p.Max), Multiplier: p.Multiplier, MaxInterval: p.Max}
	b.Reset()
	return b
}

// Cap is the upper bound of the wait before retry number attempt (1 = the first retry):
// min(Max, Initial·Multiplier^(attempt-1)).
func (p Policy) Cap(attempt int) time.Duration {
	p = p.withDefaults()
	b := p.schedule()
	c := b.NextBackOff()
	for i := 1; i < attempt && c < p.Max; i++ {
		c = b.NextBackOff()
	}
	return c
}

// Backoff is the full-jitter delay before retry number attempt: uniform in [0, Cap(attempt)].
func (p Policy) Backoff(attempt int) time.Duration {
	p = p.withDefaults()
	return time.Duration(p.Rand() * float64(p.Cap(attempt)))
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

func retryAfterOf(err error) time.Duration {
	var ra RetryAfterError
	if errors.As(err, &ra) {
		return ra.RetryAfter()
	}
	return 0
}

// Sleep waits d, returning early with ctx's error when ctx ends first.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Retry calls fn until it succeeds, returns a Permanent or non-retryable error, attempts
// run out or ctx ends. A Retry-After (Policy.RetryAfter) sets the wait instead of the
// jittered backoff; one beyond MaxRetryAfter ends retrying. A wait that would outlive
// ctx's deadline is not started. It returns fn's last error, joined with the Sleep error
// when the wait was cut short.
func Retry(ctx context.Context, p Policy, fn func(ctx context.Context) error) error {
	p = p.withDefaults()
	caps := p.schedule()
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
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
		wait := time.Duration(p.Rand() * float64(caps.NextBackOff())) // full jitter: uniform in [0, Cap(attempt)]
		if ra := p.RetryAfter(err); ra > 0 {
			if ra > p.MaxRetryAfter {
				return err
			}
			wait = ra
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return err // waiting would outlive the caller's deadline
		}
		if p.OnRetry != nil {
			p.OnRetry(attempt, wait, err)
		}
		if serr := p.Sleep(ctx, wait); serr != nil {
			return errors.Join(err, serr)
		}
	}
}
