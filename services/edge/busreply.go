package edge

import (
	"context"
	"errors"

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
	return bus.ErrorReply(subject, &bus.Error{Code: code, Message: text})
}
