package mxp

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mxp-mesh/mesh/pkg/mxp/transport"
)

// ErrInvalidPayload is the sentinel of every PayloadError: errors.Is(err, ErrInvalidPayload)
// reports whether a payload failed to parse or validate.
var ErrInvalidPayload = errors.New("mxp: invalid payload")

// PayloadError reports a payload that does not follow the payload profile
// (docs/protocol.md, "Payloads"): Payload names its Go type ("CallPayload",
// "RegisterRequest", ...), Reason says what is wrong, Code is the error code that names
// the failure more precisely than CodeInvalidPayload (CodeInvalidName,
// CodeInvalidCapability, ...; "" when none does), Err is the underlying error (a JSON
// syntax error, for example) or nil.
type PayloadError struct {
	Payload string
	Reason  string
	Code    ErrorCode
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

// withCode sets the error's specific code (PayloadError.Code) when err is a
// *PayloadError, and returns err.
func withCode(err error, code ErrorCode) error {
	if pe, ok := err.(*PayloadError); ok {
		pe.Code = code
	}
	return err
}

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
// CodeTooLarge for PayloadTooLarge, CodeInvalidFrame for the other frame errors, the Code
// of a PayloadError (CodeInvalidPayload when it has none), the code of a RemoteError or ErrorCode, CodeTimeout
// for context.DeadlineExceeded, CodeUnreachable for a connection whose peer stopped
// answering (transport.ErrPeerUnreachable), CodeUnavailable for context.Canceled and other
// closed connections, and CodeInternal for anything else.
func ErrorCodeFor(err error) ErrorCode {
	var (
		re *RemoteError
		ec ErrorCode
		pe *PayloadError
	)
	switch {
	case errors.Is(err, ErrPayloadTooLarge), errors.Is(err, transport.ErrMessageTooLarge):
		return CodeTooLarge
	case errors.Is(err, ErrBufferTooSmall), errors.Is(err, ErrInvalidMagic), errors.Is(err, ErrReservedFieldNonZero),
		errors.Is(err, ErrInvalidMessageType), errors.Is(err, ErrInvalidFlags), errors.Is(err, ErrChecksumMismatch):
		return CodeInvalidFrame
	case errors.As(err, &pe) && pe.Code != "":
		return pe.Code
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
// They are the mesh's one set: the SDK checks them before sending, the edge when a frame
// arrives and the registry when it stores, all with the functions of this package
// (CheckName, CheckCapability, CheckTag and the payloads' Validate methods), so whatever
// one accepts the others accept.
const (
	MaxNameLen       = 256     // bytes of an agent name
	MaxCapabilities  = 64      // capabilities of one agent, or required by one discovery
	MaxCapabilityLen = 128     // bytes of one capability
	MaxTags          = 64      // tags of one agent
	MaxTagLen        = 128     // bytes of one tag
	MaxMetadataSize  = 4 << 10 // bytes of an agent's metadata as JSON (version, description, tags, other keys)
	MaxDiscoverLimit = 1000    // agents in one discovery answer
	MaxTopicLen      = 255     // bytes of an event topic
	MaxErrorCodeLen  = 64      // bytes of an error code
)

// CheckName reports whether s is a valid agent name: 1 to MaxNameLen bytes of valid
// UTF-8, not only white space, without control characters. Any other character is
// allowed ("Echo", "summarise:v2", "régie 7"). The error is a *PayloadError with
// CodeInvalidName.
func CheckName(s string) error { return checkName("RegisterRequest", "name", s) }

func checkName(payload, what, s string) error {
	if strings.TrimSpace(s) == "" {
		return &PayloadError{Payload: payload, Reason: "missing " + what, Code: CodeInvalidName}
	}
	if err := checkText(payload, what, s, MaxNameLen); err != nil {
		return withCode(err, CodeInvalidName)
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return &PayloadError{Payload: payload, Reason: fmt.Sprintf("%s %.32q contains a control character", what, s), Code: CodeInvalidName}
	}
	return nil
}

// CheckCapability reports whether s is a valid capability: 1 to MaxCapabilityLen bytes of
// valid UTF-8 with no white space or control characters (case and punctuation are kept:
// "Echo" and "echo" are two capabilities, "summarise:v2" is one). The error is a
// *PayloadError with CodeInvalidCapability.
func CheckCapability(s string) error {
	return withCode(checkToken("RegisterRequest", "capability", s, MaxCapabilityLen), CodeInvalidCapability)
}

// CheckTag reports whether s is a valid tag: the capability rule with MaxTagLen. The
// error is a *PayloadError with CodeInvalidMetadata.
func CheckTag(s string) error {
	return withCode(checkToken("RegisterRequest", "tag", s, MaxTagLen), CodeInvalidMetadata)
}

// checkToken validates a capability or tag: 1..max bytes of UTF-8 with no white space or
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
	if i := strings.IndexFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f || unicode.IsSpace(r) || unicode.IsControl(r) }); i >= 0 {
		return payloadErr(payload, "%s %q contains a space or control character", what, s)
	}
	return nil
}

// checkTokens validates a list of capabilities or tags: at most maxCount, each a token,
// and sets code on the error: tooMany for the count, each for a bad token.
func checkTokens(payload, what string, list []string, maxCount, maxLen int, tooMany, each ErrorCode) error {
	if len(list) > maxCount {
		return &PayloadError{Payload: payload, Reason: fmt.Sprintf("%d %ss (max %d)", len(list), what, maxCount), Code: tooMany}
	}
	for _, s := range list {
		if err := checkToken(payload, what, s, maxLen); err != nil {
			return withCode(err, each)
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
