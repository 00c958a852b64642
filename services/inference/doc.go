// Package inference is the MXP mesh inference service: one ModelAdapter interface over
// OpenAI, Anthropic, Gemini, Ollama and a deterministic mock provider, with streaming,
// resilience, context budgeting and an OpenAI-compatible HTTP API.
package inference
