// Package provider defines the ModelAdapter interface every model provider implements,
// the provider-neutral request and stream types, typed errors, and the adapters for OpenAI
// (Chat Completions), Anthropic (Messages), Gemini (generateContent) and Ollama (/api/chat),
// plus a deterministic mock that needs no network.
//
// Adapters translate wire formats and nothing else: they must not retry, time out on their
// own, open circuit breakers, log request bodies or hold credentials beyond the key they are
// built with. Resilience, routing and budgeting live in package inference.
package provider
