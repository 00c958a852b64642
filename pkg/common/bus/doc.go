// Package bus is the NATS foundation of the mesh: it starts an embedded nats-server (in
// process) or connects to an external server or cluster with reconnect backoff, drains
// connections on shutdown, names every subject of the mesh (subjects*.go, one file per
// service), names the headers that carry MXP ids, trace context and deadlines, and maps
// typed errors to and from the nats.go micro error convention (Nats-Service-Error,
// Nats-Service-Error-Code).
//
// It must not hold business logic or import a service: services meet here only through
// subject names, header names and the error shape.
package bus
