// Command mxp-inference runs the inference service alone: the bus API on NATS, and the
// OpenAI-compatible HTTP API on the admin server beside /metrics, /livez, /readyz and
// /debug/pprof (pkg/common/service.Base).
//
//	mxp-inference [--config FILE] [--nats URL] [--http ADDR] [--log-level L]
//
// Every service setting is also a YAML key in the config file and an MXP_INFERENCE_*
// environment variable (flags win over the environment, which wins over the file);
// `--help` lists them. Providers, models and aliases are maps in the config file, and
// providers also turn on from their own variables OPENAI_API_KEY, ANTHROPIC_API_KEY,
// GEMINI_API_KEY and OLLAMA_HOST (see docs/inference.md). MXP_NATS_URL is read as a
// deprecated alias of MXP_INFERENCE_NATS. With no NATS URL an embedded server is
// started, which is only useful for trying the HTTP API. The config file is reloaded when
// it changes and on SIGHUP; SIGINT/SIGTERM shut down gracefully.
//
// The program is inference.Module run alone (pkg/common/service.Module.Main); `mxp dev --target
// inference` runs the same module in a shared process.
package main

import "github.com/mxp-mesh/mesh/services/inference"

func main() { inference.Module.Main() }
