package bus

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// Error is a typed error reply. On the wire it follows nats.go micro's convention: the
// Nats-Service-Error header holds Message, Nats-Service-Error-Code holds Status (an
// HTTP-like number, as the NATS tooling expects), Mxp-Error-Kind holds Code, and the body
// is the MXP Error payload {"error","code"}.
type Error struct {
	Status  int    // HTTP-like class: 400 bad input, 404 unknown, 429 limited, 500 internal, 503 unavailable
	Code    string // stable symbolic code, e.g. "invalid_agent_id"
	Message string // human-readable detail naming the bad input
}

// Error implements error.
func (e *Error) Error() string {
	return fmt.Sprintf("%s (%d): %s", e.Code, e.Status, e.Message)
}

// Errorf builds an *Error.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorPayload is the MXP Error payload: {"error","code"}.
type ErrorPayload struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// Common error codes shared by every service.
const (
	CodeBadRequest   = "bad_request"
	CodeInvalidJSON  = "invalid_json"
	CodeTooLarge     = "payload_too_large"
	CodeRateLimited  = "rate_limited"
	CodeInternal     = "internal"
	CodeUnavailable  = "unavailable"
	CodeNotFound     = "not_found"
	CodeConflict     = "conflict"
	CodeDeadline     = "deadline_exceeded"
	CodeShuttingDown = "shutting_down"
)

// RespondError sends err as a micro error reply. A non-*Error is reported as internal
// without leaking its text to the caller.
func RespondError(req micro.Request, err error) error {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Status: 500, Code: CodeInternal, Message: "internal error"}
	}
	body, _ := json.Marshal(ErrorPayload{Error: e.Message, Code: e.Code})
	return req.Error(strconv.Itoa(e.Status), e.Message, body,
		micro.WithHeaders(micro.Headers{HeaderErrorKind: []string{e.Code}}))
}

// PublishError sends err as an error reply to the reply subject, in the same shape as
// RespondError. Use it when answering from a goroutine other than the micro handler's
// (micro's Request is only safe to answer inside its handler).
func PublishError(nc *nats.Conn, reply string, err error) error {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Status: 500, Code: CodeInternal, Message: "internal error"}
	}
	body, _ := json.Marshal(ErrorPayload{Error: e.Message, Code: e.Code})
	return nc.PublishMsg(&nats.Msg{Subject: reply, Data: body, Header: nats.Header{
		micro.ErrorHeader:     {e.Message},
		micro.ErrorCodeHeader: {strconv.Itoa(e.Status)},
		HeaderErrorKind:       {e.Code},
	}})
}

// ReplyError returns the *Error carried by a reply, or nil when the reply is not an error.
// It reads the micro headers; a reply from a non-mesh micro service (no Mxp-Error-Kind)
// still yields an *Error with Code taken from the body when present.
func ReplyError(msg *nats.Msg) error {
	if msg == nil || msg.Header == nil {
		return nil
	}
	desc := msg.Header.Get(micro.ErrorHeader)
	codeHdr := msg.Header.Get(micro.ErrorCodeHeader)
	if desc == "" && codeHdr == "" {
		return nil
	}
	status, err := strconv.Atoi(codeHdr)
	if err != nil {
		status = 500
	}
	e := &Error{Status: status, Code: msg.Header.Get(HeaderErrorKind), Message: desc}
	if e.Code == "" {
		var p ErrorPayload
		if json.Unmarshal(msg.Data, &p) == nil && p.Code != "" {
			e.Code = p.Code
		} else {
			e.Code = CodeInternal
		}
	}
	return e
}
