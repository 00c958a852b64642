package edge

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/nats-io/nats.go"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// busFailure names a failed bus request in MXP terms.
func busFailure(err error, subject string) (mxp.ErrorCode, string) {
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return mxp.CodeUnreachable, "nothing on the mesh answers at " + subject
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return mxp.CodeTimeout, "no answer from " + subject + " before the deadline"
	case errors.Is(err, nats.ErrMaxPayload):
		return mxp.CodeTooLarge, "message over the bus's payload limit"
	}
	return mxp.CodeUnavailable, "the bus is unavailable: " + err.Error()
}

// respondError answers a bus request with a micro error reply carrying an MXP Error
// payload.
func respondError(msg *nats.Msg, code mxp.ErrorCode, text string) {
	if msg.Reply == "" || msg.Sub == nil {
		return
	}
	_ = msg.RespondMsg(errorReply(msg.Reply, code, text))
}

// respondErrorTo publishes a micro error reply to a reply subject.
func respondErrorTo(nc *nats.Conn, reply string, code mxp.ErrorCode, text string) {
	if reply == "" {
		return
	}
	_ = nc.PublishMsg(errorReply(reply, code, text))
}

// errorReply builds a micro error reply (Nats-Service-Error, Nats-Service-Error-Code,
// Mxp-Error-Kind) whose body is the MXP Error payload.
func errorReply(subject string, code mxp.ErrorCode, text string) *nats.Msg {
	body, _ := json.Marshal(mxp.ErrorPayload{Error: text, Code: code})
	r := nats.NewMsg(subject)
	r.Header.Set("Nats-Service-Error", text)
	r.Header.Set("Nats-Service-Error-Code", strconv.Itoa(statusOf(code)))
	r.Header.Set(bus.HeaderErrorKind, string(code))
	r.Data = body
	return r
}

// statusOf maps an MXP error code to the HTTP-like status of the micro convention.
func statusOf(code mxp.ErrorCode) int {
	switch code {
	case mxp.CodeInvalidFrame, mxp.CodeInvalidPayload:
		return 400
	case mxp.CodeForbidden:
		return 403
	case mxp.CodeConflict:
		return 409
	case mxp.CodeNotFound, mxp.CodeUnreachable:
		return 404
	case mxp.CodeTooLarge:
		return 413
	case mxp.CodeRateLimited:
		return 429
	case mxp.CodeUnavailable:
		return 503
	case mxp.CodeTimeout:
		return 504
	}
	return 500
}
