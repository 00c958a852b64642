package inference

import (
	"errors"
	"fmt"
	"strings"
)

// Models hosted by agents. An agent on the mesh serves a model (pkg/agent/llm's
// ServeModel) and the inference service routes the model name HostedPrefix +
// "<agent-name>/<model>" to it. The contract between the two, defined here once:
//
//   - the agent registers the capability HostedCapability(model) for each model it serves
//     (so a model's name is anything that makes a valid capability);
//   - a Call to the agent whose data is a ChatRequest (JSON, Model = the model's own name)
//     is answered with a ChatResponse (JSON), or an Error whose code is one of the inference
//     error codes (invalid_request, rate_limited, ...) or the mesh's (unavailable, ...);
//   - a StreamOpen to the agent (kind JSON) whose data is the same ChatRequest is answered
//     with one StreamChunk per Chunk (JSON) and a clean StreamClose after the last one, or
//     a StreamClose carrying such an Error. The opener sends no chunks; its StreamClose
//     tells the agent to stop generating.

// HostedPrefix starts every model name that the inference service routes to an agent.
const HostedPrefix = "mxp/"

// HostedCapabilityPrefix starts the capability of a hosted model (see HostedCapability).
const HostedCapabilityPrefix = "model."

// ErrHostedModelName is wrapped by every error of ParseHostedModel.
var ErrHostedModelName = errors.New("invalid hosted model name")

// HostedCapability is the capability an agent serving model registers: "model.<model>".
// A model can be served under a name whose capability is valid (pkg/mxp.CheckCapability,
// the registry's rule: at most 128 bytes, no white space or control character).
func HostedCapability(model string) string { return HostedCapabilityPrefix + model }

// ParseHostedModel splits "<agent-name>/<model>" (a hosted model name without
// HostedPrefix, which is also accepted and removed) at its first '/' into the agent's name
// and the model, neither empty. Whether they are a valid agent name and capability is the
// mesh's rule (pkg/mxp.CheckName, CheckCapability), checked by the caller.
func ParseHostedModel(name string) (agent, model string, err error) {
	agent, model, ok := strings.Cut(strings.TrimPrefix(name, HostedPrefix), "/")
	if !ok || agent == "" || model == "" {
		return "", "", fmt.Errorf("%w: %.80q: want %s<agent-name>/<model>", ErrHostedModelName, name, HostedPrefix)
	}
	return agent, model, nil
}

// Chunks is r as the chunks a stream of it would carry: its text, its refusal, one delta
// per tool call, then the finish reason with the usage. Folding them with an Accumulator
// gives r back.
func (r *Response) Chunks() []Chunk {
	out := make([]Chunk, 0, 3+len(r.ToolCalls))
	if r.Text != "" {
		out = append(out, Chunk{Text: r.Text})
	}
	if r.Refusal != "" {
		out = append(out, Chunk{Refusal: r.Refusal})
	}
	for i, tc := range r.ToolCalls {
		out = append(out, Chunk{ToolCall: &ToolCallDelta{Index: i, ID: tc.ID, Name: tc.Name, Arguments: tc.Arguments}})
	}
	u := r.Usage
	return append(out, Chunk{FinishReason: r.FinishReason, Usage: &u})
}

// CodedError is implemented by errors that carry an inference error code
// ("rate_limited", "context_overflow", ...; the service's provider errors do). A model
// hosted by an agent sends such an error's code to its callers, so they see the same
// code as from the model in process.
type CodedError interface {
	error
	InferenceCode() string
}
