// Package registry is the MXP mesh registry service: agents register with capabilities,
// heartbeat under a lease, are discovered by capability, and expire when silent.
package registry
