// Package resilience is what every service that calls out shares: circuit breakers
// (sony/gobreaker/v2, one-step and two-step, tripping on consecutive failures or on a
// failure rate) and retry with exponential backoff and full jitter that honours a
// server's Retry-After. The exponential sequence is cenkalti/backoff/v5's, the mesh's one
// backoff library (the SDK, which may not import this module, uses it directly for its
// register and reconnect waits); Retry adds full jitter, Retry-After and the caller's
// deadline on top. Sleep and randomness are injectable, so callers test retry timing in
// virtual time.
//
// It must not know any provider or protocol: callers classify their errors (Permanent,
// Retryable, RetryAfter, IsSuccessful, IsExcluded) and the helpers act on that. It holds
// no goroutines of its own.
package resilience
