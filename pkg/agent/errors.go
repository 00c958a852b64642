package agent

import (
	"context"
	"errors"
	"fmt"
)

// Code classifies an error an agent returns or receives. It travels in the "code" field of
// an MXP Error payload, so a caller in any language can branch on it. The set is closed:
// CodeOf maps every error to one of these values.
type Code string

// The error codes an agent can send or see. docs/errors.md says what each means and what
// to do about it.
const (
	// CodeInvalidArgument: the request or tool arguments do not match what the handler
	// accepts (bad JSON, schema violation). Retrying the same request will fail again.
	CodeInvalidArgument Code = "invalid_argument"
	// CodeNotFound: the named tool, agent or capability does not exist.
	CodeNotFound Code = "not_found"
	// CodeUnavailable: the agent is not taking new work (suspended, retiring, stopped).
	// Retry later or elsewhere.
	CodeUnavailable Code = "unavailable"
	// CodeOverloaded: the agent's bounded work queue is full. Back off and retry.
	CodeOverloaded Code = "overloaded"
	// CodeDeadlineExceeded: the caller's deadline passed before an answer was ready.
	CodeDeadlineExceeded Code = "deadline_exceeded"
	// CodeCanceled: the work was cancelled (the caller went away or the agent shut down).
	CodeCanceled Code = "canceled"
	// CodePermissionDenied: the caller is not allowed to do this.
	CodePermissionDenied Code = "permission_denied"
	// CodeStepLimit: a tool-calling loop hit its step limit without a final answer.
	CodeStepLimit Code = "step_limit"
	// CodeInternal: a handler panicked or failed with an error that carries no code.
	CodeInternal Code = "internal"
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

// Is reports whether target is an *Error with the same Code, so that
// errors.Is(err, &agent.Error{Code: agent.CodeNotFound}) matches any not-found error.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == "" && t.Err == nil && t.Code == e.Code
}

// CodeOf returns the code an error travels with: the Code of the first *Error in its
// chain; CodeDeadlineExceeded and CodeCanceled for the context errors; CodeInternal for
// anything else. CodeOf(nil) is "".
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
		return CodeDeadlineExceeded
	case errors.Is(err, context.Canceled):
		return CodeCanceled
	}
	return CodeInternal
}

// asError converts any error into the *Error that is sent to a caller.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) && e.Code != "" {
		return e
	}
	return &Error{Code: CodeOf(err), Message: err.Error(), Err: err}
}
