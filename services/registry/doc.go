// Package registry is the MXP mesh registry service: agents register with capabilities,
// heartbeat under a lease, are discovered by capability, name prefix and tag, and expire
// when silent. It answers on the mxp.registry.* subjects (nats.go micro, queue group
// "mxp-registry", so replicas share the work), publishes mxp.registry.events.*, and serves
// a read-only HTTP API (GET /v1/agents, GET /v1/agents/{id}) beside its metrics.
//
// State lives in a Store: memory (one replica) or Redis (shared by replicas; leases are
// kept in Redis and popped atomically, so any replica can serve any agent and each expiry
// is announced once).
//
// It must not import another service, and must not trust any field of a request before
// validate.go has checked it.
package registry
