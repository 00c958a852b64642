package agent

import (
	"context"
	"errors"
	"fmt"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// Code classifies an error an agent returns or receives. It is the mesh's one error
// vocabulary, mxp.ErrorCode (an alias, so agent.Code and mxp.ErrorCode values mix
// freely): it travels in the "code" field of an MXP Error payload, so a caller in any
// language can branch on it, and the codes the edge and services send (unreachable,
// timeout, rate_limited, ...) are Codes too. The constants below name the codes an agent
// sends or most often sees; docs/errors.md lists every code.
type Code = mxp.ErrorCode

// The error codes an agent can send or see. docs/errors.md says what each means and what
// to do about it.
const (
	// CodeInvalidArgument: the request or tool arguments do not match what the handler
	// accepts (bad JSON, schema violation). Retrying the same request will fail again.
	CodeInvalidArgument = mxp.CodeInvalidArgument
	// CodeNotFound: the named tool, agent, stream or handler does not exist.
	CodeNotFound = mxp.CodeNotFound
	// CodeUnavailable: the agent is not taking new work (suspended, retiring, stopped) or
	// the mesh is starting or draining. Retry later or elsewhere.
	CodeUnavailable = mxp.CodeUnavailable
	// CodeOverloaded: the agent's bounded work queue is full. Back off and retry.
	CodeOverloaded = mxp.CodeOverloaded
	// CodeTimeout: the caller's deadline passed before an answer was ready.
	CodeTimeout = mxp.CodeTimeout
	// CodeCanceled: the work was cancelled (the caller went away or the agent shut down).
	CodeCanceled = mxp.CodeCanceled
	// CodeForbidden: the caller is not allowed to do this.
	CodeForbidden = mxp.CodeForbidden
	// CodeStepLimit: a tool-calling loop hit its step limit without a final answer.
	CodeStepLimit = mxp.CodeStepLimit
	// CodeInternal: a handler panicked or failed with an error that carries no code.
	CodeInternal = mxp.CodeInternal

	// Codes the mesh itself sends (see pkg/mxp and docs/protocol.md).

	// CodeUnreachable: no agent or service answers at the target.
	CodeUnreachable = mxp.CodeUnreachable
	// CodeRateLimited: the sender exceeded a rate or concurrency limit of the edge.
	CodeRateLimited = mxp.CodeRateLimited
	// CodeTooLarge: a frame, payload or result exceeds a size limit.
	CodeTooLarge = mxp.CodeTooLarge
	// CodeInvalidPayload: a payload does not follow the MXP payload profile.
	CodeInvalidPayload = mxp.CodeInvalidPayload
	// CodeInvalidFrame: a frame failed to decode.
	CodeInvalidFrame = mxp.CodeInvalidFrame
	// CodeConflict: the agent name or id is held by another identity.
	CodeConflict = mxp.CodeConflict
)

// Error is an error with a Code. Return one from a handler (see Errorf) to choose the code
// of the Error frame the caller receives; any other error is sent as CodeInternal with its
// message.
type Error struct {
	Code    Code   // what kind of failure; never empty
	Message string // human-readable, safe to show the caller
	Err     error  // the cause, if any; not sent on the wire
}

// Errorf returns an *Error with the given code and a formatted message. A %w verb in
// format sets Err, so errors.Is and errors.As see the cause.
func Errorf(code Code, format string, args ...any) *Error {
	wrapped := fmt.Errorf(format, args...)
	return &Error{Code: code, Message: wrapped.Error(), Err: errors.Unwrap(wrapped)}
}

// Error implements error as "code: message".
func (e *Error) Error() string {
	if e.Message == "" {
		return string(e.Code)
	}
	return string(e.Code) + ": " + e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error with only the same Code, so that
// errors.Is(err, &agent.Error{Code: agent.CodeNotFound}) matches any not-found error.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == "" && t.Err == nil && t.Code == e.Code
}

// CodeOf returns the code an error travels with: the Code of the first *Error in its
// chain; CodeTimeout and CodeCanceled for the context errors; the code of a remote MXP
// error (*mxp.RemoteError) or an mxp.ErrorCode; CodeInvalidFrame / CodeInvalidPayload /
// CodeTooLarge for MXP decoding errors; CodeInternal for anything else. CodeOf(nil) is "".
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) && e.Code != "" {
		return e.Code
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return CodeTimeout
	case errors.Is(err, context.Canceled):
		return CodeCanceled
	}
	return mxp.ErrorCodeFor(err) // remote errors, mxp codes, frame and payload errors
}

// AsError converts any error into the *Error that is sent to a caller.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) && e.Code != "" {
		return e
	}
	return &Error{Code: CodeOf(err), Message: err.Error(), Err: err}
}
