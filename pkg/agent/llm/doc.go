// Package llm is the SDK's LLM toolkit: tools (plain Go functions whose JSON Schema is
// derived from their argument struct, validated before they run), toolboxes an agent can
// advertise as "tool.<name>" capabilities, chat models (the mesh's inference service
// through an agent with Mesh, a model adapter in process with AdapterModel, or any
// ChatModel), streaming of a model's answer (ChatStreamer, RelayText), the tool-calling
// loop (ToolLoop), and serving models to the mesh (ServeModel, ModelHost: the agent's
// models become "mxp/<agent>/<model>" of the inference service).
//
// Its conversation types (ChatRequest, Message, Chunk, ...) are aliases of the inference
// service's wire contract, pkg/api/inference, so what it sends is exactly what the
// service reads. It must not import any service or pkg/common (scripts/check-deps.sh
// checks it): it reaches the mesh only through the core package's public API. It must
// not retry, cache or budget model calls itself — the inference service does that, once,
// for every client.
package llm
