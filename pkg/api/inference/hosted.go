package inference

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Models hosted by agents. An agent on the mesh serves a model (pkg/agent/llm's
// ServeModel) and the inference service routes the model name HostedPrefix +
// "<agent-name>/<model>" to it. The contract between the two, defined here once:
//
//   - the agent registers the capability HostedCapability(model) for each model it serves;
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

// MaxHostedModelLen bounds a hosted model's own name, so that its capability fits the
// registry's 128-byte limit.
const MaxHostedModelLen = 128 - len(HostedCapabilityPrefix)

// ErrHostedModelName is wrapped by every error of CheckHostedModel and ParseHostedModel.
var ErrHostedModelName = errors.New("invalid hosted model name")

// HostedCapability is the capability an agent serving model registers: "model.<model>".
func HostedCapability(model string) string { return HostedCapabilityPrefix + model }

// CheckHostedModel reports whether model can be served by an agent: 1 to
// MaxHostedModelLen bytes of [a-z0-9._-], the characters a registry capability may hold.
func CheckHostedModel(model string) error {
	if model == "" || len(model) > MaxHostedModelLen {
		return fmt.Errorf("%w: %.40q must be 1-%d bytes", ErrHostedModelName, model, MaxHostedModelLen)
	}
	for i := 0; i < len(model); i++ {
		c := model[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %.40q: character %q is not in [a-z0-9._-]", ErrHostedModelName, model, c)
		}
	}
	return nil
}

// ParseHostedModel splits "<agent-name>/<model>" (a hosted model name without
// HostedPrefix, which is also accepted and removed) into the agent's name and the model.
// The agent name is everything before the first '/': non-empty, at most 256 bytes, with no
// space or control character; the model must pass CheckHostedModel.
func ParseHostedModel(name string) (agent, model string, err error) {
	rest := strings.TrimPrefix(name, HostedPrefix)
	agent, model, ok := strings.Cut(rest, "/")
	if !ok || agent == "" {
		return "", "", fmt.Errorf("%w: %.80q: want %s<agent-name>/<model>", ErrHostedModelName, name, HostedPrefix)
	}
	if len(agent) > 256 || !utf8.ValidString(agent) || strings.IndexFunc(agent, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		return "", "", fmt.Errorf("%w: agent name %.40q is over 256 bytes or holds a space, control character or invalid UTF-8",
			ErrHostedModelName, agent)
	}
	if err := CheckHostedModel(model); err != nil {
		return "", "", err
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
