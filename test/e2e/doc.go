// Package e2e holds the MXP mesh's deployment tests.
//
// Without build tags it checks the deployment files themselves: every Kubernetes manifest
// in deploy/k8s and docker-compose.yml parse as YAML, name only mxp-mesh/*:dev images that
// `make images` builds (nothing to pull), and keep the shape the docs describe (the edge's
// UDP Service with ClientIP affinity, NATS run by our own binary).
//
// With the build tag e2e (`make e2e`) it builds the images, starts docker-compose.yml,
// registers an echo agent through the published UDP port with the mxp CLI, calls it, lists
// it and reads it back from the registry container's HTTP API (stored in Redis), then
// removes everything. It skips when Docker, Compose or the host's redis-server is missing.
//
// It must not import the mesh's packages: it drives the built binaries and containers only,
// as a user would.
package e2e
