// Package common is the root of the service foundation shared by every MXP mesh service:
// its subpackages hold config, logging, metrics and health, tracing, the NATS bus,
// lifecycle, security and resilience helpers. Each subpackage has one job and must not
// import any service.
package common
