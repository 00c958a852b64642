// Command mxp-edge runs the MXP edge alone: it terminates MXP connections from agents (the
// secure UDP transport, and the plaintext listener of the reference SDK when
// --compat-addr is set) and joins them to the mesh bus.
//
//	mxp-edge [--config FILE] [--nats URL] [--addr :9000] [--key-file FILE]
//	         [--compat-addr 127.0.0.1:9001] [--http ADDR] [--log-level L]
//
// Every setting is also a YAML key and an MXP_EDGE_* environment variable (flags win over
// the environment, which wins over the file); --help lists them. The key file is created
// with a new key when missing; the public key is logged at start. The config file is
// reloaded on change and on SIGHUP (limits and timeouts apply live); SIGINT/SIGTERM shut
// down gracefully (readiness false, connections closed, their agents deregistered).
//
// The program is edge.Module run alone (pkg/common/service.Module.Main); `mxp dev --target
// edge` runs the same module in a shared process.
package main

import "github.com/mxp-mesh/mesh/services/edge"

func main() { edge.Module.Main() }
