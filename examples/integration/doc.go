// Package integration holds the end-to-end tests of the Go agent SDK (pkg/agent) against
// a whole mesh running in process (internal/meshtest): registration, calls by id and by
// capability, errors with their codes, the inference service, events and streams, and a
// graceful retire. It has no code of its own besides the tests.
package integration
