// Package security holds the small security helpers every service shares: Secret, a
// string whose value never reaches logs, fmt output or JSON; Limiter, a per-key token
// bucket with bounded memory; and Limits, input limits as configuration.
//
// It must not log, and must not reveal a Secret anywhere but through Secret.Reveal.
package security
