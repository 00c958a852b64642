package mxp

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/mxp-mesh/mesh/pkg/mxp/transport"
)

// ErrInvalidPayload is the sentinel of every PayloadError: errors.Is(err, ErrInvalidPayload)
// reports whether a payload failed to parse or validate.
var ErrInvalidPayload = errors.New("mxp: invalid payload")

// PayloadError reports a payload that does not follow the payload profile
// (docs/protocol.md, "Payloads"): Payload names its Go type ("CallPayload",
// "RegisterRequest", ...), Reason says what is wrong, Err is the underlying error (a JSON
// syntax error, for example) or nil.
type PayloadError struct {
	Payload string
	Reason  string
	Err     error
}

func (e *PayloadError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("mxp: invalid %s: %s: %v", e.Payload, e.Reason, e.Err)
	}
	return fmt.Sprintf("mxp: invalid %s: %s", e.Payload, e.Reason)
}

// Unwrap returns the underlying error, if any.
func (e *PayloadError) Unwrap() error { return e.Err }

// Is reports whether target is ErrInvalidPayload.
func (e *PayloadError) Is(target error) bool { return target == ErrInvalidPayload }

func (e *PayloadError) kindName() string { return "InvalidPayload" }

func payloadErr(payload, format string, a ...any) *PayloadError {
	return &PayloadError{Payload: payload, Reason: fmt.Sprintf(format, a...)}
}

// ErrorCode is the machine-readable code of an Error payload. The standard codes are the
// constants below; a service may send others. An ErrorCode is also an error, so the codes
// serve as sentinels: errors.Is(err, CodeTimeout) holds for a RemoteError with that code.
type ErrorCode string

// The standard error codes.
const (
	CodeInvalidFrame   ErrorCode = "invalid_frame"   // the frame failed to decode (any frame error kind but PayloadTooLarge)
	CodeInvalidPayload ErrorCode = "invalid_payload" // the payload does not follow the profile for its type
	CodeUnreachable    ErrorCode = "unreachable"     // no agent or service answers at the target id
	CodeTimeout        ErrorCode = "timeout"         // the target did not answer within the deadline
	CodeRateLimited    ErrorCode = "rate_limited"    // the sender exceeded a rate or concurrency limit
	CodeTooLarge       ErrorCode = "too_large"       // a frame, payload or result exceeds a size limit
	CodeForbidden      ErrorCode = "forbidden"       // the sender may not do this (identity, capability or policy)
	CodeInternal       ErrorCode = "internal"        // a fault inside the mesh; the sender did nothing wrong
	CodeUnavailable    ErrorCode = "unavailable"     // the service is starting, draining or overloaded; retry later
	CodeNotFound       ErrorCode = "not_found"       // the named thing (agent, tool, stream, model) does not exist
	CodeConflict       ErrorCode = "conflict"        // the agent name or id is held by another identity while its lease lives
)

// Error makes an ErrorCode usable as a sentinel error.
func (c ErrorCode) Error() string { return "mxp: " + string(c) }

// RemoteError is an Error payload received from a peer, as a Go error: errors.Is(err,
// CodeTimeout) matches its code.
type RemoteError struct {
	Code    ErrorCode
	Message string
}

func (e *RemoteError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("mxp: remote error %s", e.Code)
	}
	return fmt.Sprintf("mxp: remote error %s: %s", e.Code, e.Message)
}

// Is reports whether target is e's code.
func (e *RemoteError) Is(target error) bool {
	c, ok := target.(ErrorCode)
	return ok && c == e.Code
}

// ErrorCodeFor returns the standard code that describes err to the peer that caused it:
// CodeTooLarge for PayloadTooLarge, CodeInvalidFrame for the other frame errors,
// CodeInvalidPayload for a PayloadError, the code of a RemoteError or ErrorCode, CodeTimeout
// for context.DeadlineExceeded, CodeUnreachable for a connection whose peer stopped
// answering (transport.ErrPeerUnreachable), CodeUnavailable for context.Canceled and other
// closed connections, and CodeInternal for anything else.
func ErrorCodeFor(err error) ErrorCode {
	var (
		re *RemoteError
		ec ErrorCode
	)
	switch {
	case errors.Is(err, ErrPayloadTooLarge), errors.Is(err, transport.ErrMessageTooLarge):
		return CodeTooLarge
	case errors.Is(err, ErrBufferTooSmall), errors.Is(err, ErrInvalidMagic), errors.Is(err, ErrReservedFieldNonZero),
		errors.Is(err, ErrInvalidMessageType), errors.Is(err, ErrInvalidFlags), errors.Is(err, ErrChecksumMismatch):
		return CodeInvalidFrame
	case errors.Is(err, ErrInvalidPayload):
		return CodeInvalidPayload
	case errors.As(err, &re):
		return re.Code
	case errors.As(err, &ec):
		return ec
	case errors.Is(err, transport.ErrPeerUnreachable):
		return CodeUnreachable
	case errors.Is(err, transport.ErrClosed):
		return CodeUnavailable
	case errors.Is(err, context.DeadlineExceeded):
		return CodeTimeout
	case errors.Is(err, context.Canceled):
		return CodeUnavailable
	}
	return CodeInternal
}

// Limits of the payload profile. Decoders reject payloads beyond them with a PayloadError.
const (
	MaxNameLen       = 256  // bytes of an agent name
	MaxCapabilities  = 256  // capabilities of one agent, or required by one discovery
	MaxCapabilityLen = 128  // bytes of one capability
	MaxTags          = 64   // tags of one agent
	MaxTagLen        = 128  // bytes of one tag
	MaxDiscoverLimit = 1000 // agents in one discovery answer
	MaxTopicLen      = 255  // bytes of an event topic
	MaxErrorCodeLen  = 64   // bytes of an error code
)

// checkToken validates a capability or tag: 1..max bytes of UTF-8 with no spaces or
// control characters.
func checkToken(payload, what, s string, max int) error {
	if s == "" {
		return payloadErr(payload, "empty %s", what)
	}
	if len(s) > max {
		return payloadErr(payload, "%s %.32q... is %d bytes (max %d)", what, s, len(s), max)
	}
	if !utf8.ValidString(s) {
		return payloadErr(payload, "%s %q is not valid UTF-8", what, s)
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }); i >= 0 {
		return payloadErr(payload, "%s %q contains a space or control character", what, s)
	}
	return nil
}

func checkTokens(payload, what string, list []string, maxCount, maxLen int) error {
	if len(list) > maxCount {
		return payloadErr(payload, "%d %ss (max %d)", len(list), what, maxCount)
	}
	for _, s := range list {
		if err := checkToken(payload, what, s, maxLen); err != nil {
			return err
		}
	}
	return nil
}

// checkText validates free text: valid UTF-8 of at most max bytes.
func checkText(payload, what, s string, max int) error {
	if len(s) > max {
		return payloadErr(payload, "%s is %d bytes (max %d)", what, len(s), max)
	}
	if !utf8.ValidString(s) {
		return payloadErr(payload, "%s is not valid UTF-8", what)
	}
	return nil
}

// Payload is implemented by every payload type of the profile: it appends its encoding to
// dst after validating itself, and leaves dst unchanged on error.
type Payload interface {
	AppendPayload(dst []byte) ([]byte, error)
}
