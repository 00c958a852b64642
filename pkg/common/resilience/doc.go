// Package resilience is what every service that calls out shares: circuit breakers
// (sony/gobreaker/v2, one-step and two-step, tripping on consecutive failures or on a
// failure rate) and retry with exponential backoff and full jitter that honours a
// server's Retry-After. Sleep and randomness are injectable, so callers test retry timing
// in virtual time.
//
// It must not know any provider or protocol: callers classify their errors (Permanent,
// Retryable, RetryAfter, IsSuccessful, IsExcluded) and the helpers act on that. It holds
// no goroutines of its own.
package resilience
