// Package agent is the core of the Go SDK for writing autonomous agents that speak MXP.
//
// An agent is a value with a lifecycle (Init → Ready → Active ⇄ Suspended → Retiring →
// Terminated) and handlers for the message kinds it serves (Call, Event, Stream); Run
// connects it to the mesh, registers it, heartbeats, reconnects and retires it. Through
// it the agent calls other agents and services, discovers agents by capability,
// publishes and subscribes to events and opens streams.
//
// Two opt-in packages build on this one: agent/llm (tools with JSON Schemas derived from
// Go structs, chat models — the mesh's inference service among them — streaming, and the
// tool-calling loop) and agent/memory (a bounded conversation ring, an append-only
// journal, checkpoints and a vector store). This package imports neither, so an agent
// that uses no model compiles no model code.
//
// The package is the boundary between agent authors and the mesh. It must stay small and
// hard to misuse: it never starts an unbounded goroutine per message, never lets a handler
// panic crash the process, and never exposes wire details (frames, subjects) that authors
// would then depend on. It must not import any service, nor pkg/common (the service
// foundation, which compiles the NATS server and OpenTelemetry): only pkg/mxp and the
// services' wire contracts in pkg/api. scripts/check-deps.sh (make lint) enforces it.
//
// Observability: Agent.Stats and Agent.Collector (Prometheus: registrations, handler
// outcomes, the dispatcher queue's depth mxp_agent_dispatch_queued); with
// Config.TracerProvider, spans for the calls the agent makes and the messages it handles,
// in the mesh's trace (tracing.go). Tracing uses the OpenTelemetry API only: the
// application brings the provider.
package agent
