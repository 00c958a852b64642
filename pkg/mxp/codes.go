package mxp

// ErrorCode is the machine-readable code of an Error payload, and the one error
// vocabulary of the mesh: the edge, the services (their bus replies, the registry's and
// the inference service's HTTP APIs) and the SDK all send these values, and
// docs/errors.md lists each with what it means and what to do. Other packages name
// subsets of it (agent.Code and the inference service's provider.Code are aliases of
// this type); none defines a code of its own. A peer may still send a code outside the
// list: it travels unchanged and maps to HTTP 500.
//
// An ErrorCode is also an error, so the codes serve as sentinels: errors.Is(err,
// CodeTimeout) holds for a RemoteError with that code.
type ErrorCode string

// The codes of the mesh itself: the edge and the frame layer send them.
const (
	CodeInvalidFrame   ErrorCode = "invalid_frame"   // the frame failed to decode (any frame error kind but PayloadTooLarge)
	CodeInvalidPayload ErrorCode = "invalid_payload" // the payload does not follow the profile for its type, or is not the JSON its receiver expects
	CodeUnreachable    ErrorCode = "unreachable"     // no agent or service answers at the target id
	CodeTimeout        ErrorCode = "timeout"         // the target did not answer within the deadline
	CodeRateLimited    ErrorCode = "rate_limited"    // the sender exceeded a rate or concurrency limit
	CodeTooLarge       ErrorCode = "too_large"       // a frame, payload or result exceeds a size limit
	CodeForbidden      ErrorCode = "forbidden"       // the sender may not do this (identity, capability or policy)
	CodeInternal       ErrorCode = "internal"        // a fault inside the mesh; the sender did nothing wrong
	CodeUnavailable    ErrorCode = "unavailable"     // the service or agent is starting, draining or not taking work; retry later
	CodeNotFound       ErrorCode = "not_found"       // the named thing (agent, tool, stream, handler) does not exist
	CodeConflict       ErrorCode = "conflict"        // the agent name or id is held by another identity while its lease lives
)

// The codes of agents (the Go SDK's dispatcher, handlers and tools).
const (
	CodeInvalidArgument ErrorCode = "invalid_argument" // the request does not match what the handler or service accepts
	CodeOverloaded      ErrorCode = "overloaded"       // a bounded queue stayed full (an agent's, or a model provider's); back off
	CodeCanceled        ErrorCode = "canceled"         // the work was cancelled: the caller went away or the answerer shut down
	CodeStepLimit       ErrorCode = "step_limit"       // a tool-calling loop hit its step limit without a final answer
)

// The codes of the registry's checks (AgentRegister, AgentHeartbeat, AgentDiscover and its
// HTTP API): which part of the request is wrong.
const (
	CodeInvalidAgentID      ErrorCode = "invalid_agent_id"      // the id is not a UUID, or is the nil UUID
	CodeInvalidName         ErrorCode = "invalid_name"          // the agent name breaks the name rule (CheckName)
	CodeInvalidCapability   ErrorCode = "invalid_capability"    // a capability breaks the capability rule (CheckCapability)
	CodeTooManyCapabilities ErrorCode = "too_many_capabilities" // more than MaxCapabilities
	CodeInvalidAddress      ErrorCode = "invalid_address"       // the address names no port
	CodeInvalidMetadata     ErrorCode = "invalid_metadata"      // a tag or a metadata value is malformed
	CodeMetadataTooLarge    ErrorCode = "metadata_too_large"    // metadata over the registry's configured size
	CodeInvalidQuery        ErrorCode = "invalid_query"         // a discovery filter, limit or page token is malformed
	CodeStoreUnavailable    ErrorCode = "store_unavailable"     // the registry's store failed; retry
)

// The codes of the inference service (its bus API and its OpenAI-compatible HTTP API,
// where they are the "code" of the error body; OpenAI clients may read them, so their
// spelling is kept).
const (
	CodeInvalidRequest   ErrorCode = "invalid_request"   // the chat request is malformed or the provider refused it as such
	CodeUnauthenticated  ErrorCode = "unauthenticated"   // no or a wrong credential (ours, or the provider's for ours)
	CodePermissionDenied ErrorCode = "permission_denied" // the provider refused the credential for this model or action
	CodeModelNotFound    ErrorCode = "model_not_found"   // no configured model or provider by that name
	CodeProviderError    ErrorCode = "provider_error"    // the provider failed (5xx, a broken stream)
	CodeCircuitOpen      ErrorCode = "circuit_open"      // the provider's circuit breaker is open after repeated failures
	CodeContextOverflow  ErrorCode = "context_overflow"  // the prompt does not fit the model's context window
	CodeContentFiltered  ErrorCode = "content_filtered"  // the provider's content filter refused the request or answer
	CodeUnknownURL       ErrorCode = "unknown_url"       // an HTTP path of the OpenAI-compatible API that the mesh does not serve
)

// codeStatus is the one map from code to HTTP status, for the registry's and the
// inference service's HTTP APIs and for the status of the NATS micro error convention
// (Nats-Service-Error-Code). 499 is nginx's "client closed request". The numbers are
// literal so that the protocol package does not import net/http.
var codeStatus = map[ErrorCode]int{
	CodeInvalidFrame:   400,
	CodeInvalidPayload: 400,
	CodeUnreachable:    404,
	CodeTimeout:        504,
	CodeRateLimited:    429,
	CodeTooLarge:       413,
	CodeForbidden:      403,
	CodeInternal:       500,
	CodeUnavailable:    503,
	CodeNotFound:       404,
	CodeConflict:       409,

	CodeInvalidArgument: 400,
	CodeOverloaded:      503,
	CodeCanceled:        499,
	CodeStepLimit:       500,

	CodeInvalidAgentID:      400,
	CodeInvalidName:         400,
	CodeInvalidCapability:   400,
	CodeTooManyCapabilities: 400,
	CodeInvalidAddress:      400,
	CodeInvalidMetadata:     400,
	CodeMetadataTooLarge:    413,
	CodeInvalidQuery:        400,
	CodeStoreUnavailable:    503,

	CodeInvalidRequest:   400,
	CodeUnauthenticated:  401,
	CodePermissionDenied: 403,
	CodeModelNotFound:    404,
	CodeProviderError:    502,
	CodeCircuitOpen:      503,
	CodeContextOverflow:  400,
	CodeContentFiltered:  400,
	CodeUnknownURL:       404,
}

// legacyCodes are spellings older services sent for an idea that has one code now. A
// peer built before the vocabulary was merged may still send them; Canonical reads them
// as today's code.
var legacyCodes = map[ErrorCode]ErrorCode{
	"payload_too_large": CodeTooLarge,
	"deadline_exceeded": CodeTimeout,
	"shutting_down":     CodeUnavailable,
	"bad_request":       CodeInvalidArgument,
	"invalid_json":      CodeInvalidPayload,
}

// Error makes an ErrorCode usable as a sentinel error. Its text is the bare code, so a
// code prints the same whether formatted as a string or as an error (fmt prefers Error).
func (c ErrorCode) Error() string { return string(c) }

// HTTPStatus is the HTTP status of the code: the one code→status map of the mesh (a
// legacy spelling maps as its canonical code; a code outside the vocabulary maps to 500).
func (c ErrorCode) HTTPStatus() int {
	if s, ok := codeStatus[c]; ok {
		return s
	}
	if s, ok := codeStatus[legacyCodes[c]]; ok {
		return s
	}
	return 500
}

// Canonical returns the code an old spelling stands for ("payload_too_large" is
// CodeTooLarge, "deadline_exceeded" CodeTimeout, "shutting_down" CodeUnavailable,
// "bad_request" CodeInvalidArgument, "invalid_json" CodeInvalidPayload), and c itself
// otherwise. Decoders of Error payloads and bus replies apply it, so a program compares
// against one constant per idea.
func (c ErrorCode) Canonical() ErrorCode {
	if n, ok := legacyCodes[c]; ok {
		return n
	}
	return c
}

// Known reports whether c is one of the codes of this package (not a legacy spelling).
func (c ErrorCode) Known() bool {
	_, ok := codeStatus[c]
	return ok
}

// Codes returns every code of the vocabulary, in no particular order.
func Codes() []ErrorCode {
	out := make([]ErrorCode, 0, len(codeStatus))
	for c := range codeStatus {
		out = append(out, c)
	}
	return out
}
