// Package inference is the inference service's wire contract: the chat request and
// response, messages, tool definitions and calls, stream chunks, usage and the stream's
// terminal summary, as JSON on the mesh (the data of a Call or StreamOpen to the
// "inference" service, and of the inference bus subjects), plus the two interfaces a model
// is used through (Stream, ModelAdapter).
//
// It is the one definition of these types: services/inference and its provider adapters
// use them, and so does the SDK (pkg/agent/llm), which therefore compiles none of the
// service. It must import nothing but the standard library — no service, no NATS, no
// OpenTelemetry — and hold no behaviour beyond folding chunks into a response.
package inference
