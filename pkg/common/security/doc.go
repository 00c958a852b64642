// Package security holds the small security helpers every service shares: Secret, a
// string whose value never reaches logs, fmt output or JSON; Limiter, a per-key token
// bucket with bounded memory; Limits, input limits as configuration; and Scrubber, which
// removes configured secrets from any text that leaves the mesh (Scrub, Excerpt).
//
// It must not log, and must not reveal a Secret anywhere but through Secret.Reveal.
package security
