package bus

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// Error is a typed error reply. Its Code is one of the mesh's error codes (mxp.ErrorCode,
// docs/errors.md); its HTTP-like status is the code's (mxp.ErrorCode.HTTPStatus), never
// chosen apart from it. On the wire it follows nats.go micro's convention: the
// Nats-Service-Error header holds Message, Nats-Service-Error-Code holds the status (as
// the NATS tooling expects), Mxp-Error-Kind holds Code, and the body is the MXP Error
// payload {"error","code"}.
type Error struct {
	Code    mxp.ErrorCode // stable symbolic code, e.g. mxp.CodeInvalidAgentID
	Message string        // human-readable detail naming the bad input
}

// Status is the HTTP-like status of e's code.
func (e *Error) Status() int { return e.Code.HTTPStatus() }

// Error implements error.
func (e *Error) Error() string {
	return fmt.Sprintf("%s (%d): %s", e.Code, e.Status(), e.Message)
}

// Errorf builds an *Error.
func Errorf(code mxp.ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// internalError is what a caller sees of an error that is not an *Error: its text may
// hold anything, so it is not sent.
var internalError = &Error{Code: mxp.CodeInternal, Message: "internal error"}

func asError(err error) *Error {
	var e *Error
	if !errors.As(err, &e) {
		return internalError
	}
	return e
}

// RespondError sends err as a micro error reply. A non-*Error is reported as internal
// without leaking its text to the caller.
func RespondError(req micro.Request, err error) error {
	e := asError(err)
	body, _ := json.Marshal(mxp.ErrorPayload{Error: e.Message, Code: e.Code})
	return req.Error(strconv.Itoa(e.Status()), e.Message, body,
		micro.WithHeaders(micro.Headers{HeaderErrorKind: []string{string(e.Code)}}))
}

// ErrorReply builds the error reply to subject in the shape RespondError sends (a
// non-*Error is reported as internal, its text not sent).
func ErrorReply(subject string, err error) *nats.Msg {
	e := asError(err)
	body, _ := json.Marshal(mxp.ErrorPayload{Error: e.Message, Code: e.Code})
	return &nats.Msg{Subject: subject, Data: body, Header: nats.Header{
		micro.ErrorHeader:     {e.Message},
		micro.ErrorCodeHeader: {strconv.Itoa(e.Status())},
		HeaderErrorKind:       {string(e.Code)},
	}}
}

// PublishError sends err as an error reply to the reply subject, in the same shape as
// RespondError. Use it when answering from a goroutine other than the micro handler's
// (micro's Request is only safe to answer inside its handler).
func PublishError(nc *nats.Conn, reply string, err error) error {
	return nc.PublishMsg(ErrorReply(reply, err))
}

// ReplyError returns the *Error carried by a reply, or nil when the reply is not an error.
// It reads the micro headers; a reply from a non-mesh micro service (no Mxp-Error-Kind)
// still yields an *Error with Code taken from the body when present, else
// mxp.CodeInternal. A legacy spelling of a code is returned canonical
// (mxp.ErrorCode.Canonical), so an older service's "payload_too_large" reads as
// mxp.CodeTooLarge.
func ReplyError(msg *nats.Msg) error {
	if msg == nil || msg.Header == nil {
		return nil
	}
	desc := msg.Header.Get(micro.ErrorHeader)
	if desc == "" && msg.Header.Get(micro.ErrorCodeHeader) == "" {
		return nil
	}
	e := &Error{Code: mxp.ErrorCode(msg.Header.Get(HeaderErrorKind)), Message: desc}
	if e.Code == "" {
		var p mxp.ErrorPayload
		if json.Unmarshal(msg.Data, &p) == nil && p.Code != "" {
			e.Code = p.Code
		} else {
			e.Code = mxp.CodeInternal
		}
	}
	e.Code = e.Code.Canonical()
	return e
}
