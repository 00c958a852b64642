// Package agent is the Go SDK for writing autonomous agents that speak MXP.
//
// An agent is a value with a lifecycle (Init → Ready → Active ⇄ Suspended → Retiring →
// Terminated), handlers for the message kinds it serves (Call, Event, Stream), tools
// (plain Go functions whose JSON Schema is derived from their argument struct), and
// memory: a bounded conversation ring, an append-only journal, a vector store, and
// checkpoints that let a restarted agent carry on.
//
// The package is the boundary between agent authors and the mesh. It must stay small and
// hard to misuse: it never starts an unbounded goroutine per message, never lets a handler
// panic crash the process, and never exposes wire details (frames, subjects) that authors
// would then depend on. It must not import any service's implementation, only the wire
// types the services publish.
package agent
