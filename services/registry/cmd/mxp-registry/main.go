// Command mxp-registry runs the MXP mesh registry service alone.
//
//	mxp-registry [--config FILE] [--nats URL] [--store memory|redis://host:port/db]
//	             [--http ADDR] [--lease D] [--heartbeat-interval D] [--log-level L]
//
// Every setting is also a YAML key in the config file and an MXP_REGISTRY_* environment
// variable (flags win over the environment, which wins over the file); `--help` lists
// them. With no --nats an embedded NATS server is started on a random loopback port.
// The config file is reloaded on change and on SIGHUP; SIGINT/SIGTERM shut down
// gracefully (readiness false, intake stops, in-flight requests drain, the bus drains).
//
// The program is registry.Module run alone (pkg/common/service.Module.Main); `mxp dev --target
// registry` runs the same module in a shared process.
package main

import "github.com/mxp-mesh/mesh/services/registry"

func main() { registry.Module.Main() }
