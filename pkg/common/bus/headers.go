package bus

import (
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
)

// Header names carried on every mesh message. NATS headers are case-sensitive; these are
// the exact spellings every service and the edge use.
const (
	// HeaderMsgID is the MXP message id, 16 lowercase hex digits.
	HeaderMsgID = "Mxp-Msg-Id"
	// HeaderTraceID is the MXP trace id, 16 lowercase hex digits. It is also carried as
	// W3C traceparent (see package tracing for the mapping).
	HeaderTraceID = "Mxp-Trace-Id"
	// HeaderTraceparent is the W3C Trace Context header, lower case as the spec writes it.
	HeaderTraceparent = "traceparent"
	// HeaderTracestate is the W3C Trace Context vendor state header.
	HeaderTracestate = "tracestate"
	// HeaderAgentID is the calling agent's id (a UUID string).
	HeaderAgentID = "Mxp-Agent-Id"
	// HeaderDeadline is the caller's absolute deadline in Unix milliseconds.
	HeaderDeadline = "Mxp-Deadline"
	// HeaderErrorKind is the symbolic error code of an error reply (e.g. "invalid_agent_id"),
	// beside the micro convention's numeric Nats-Service-Error-Code.
	HeaderErrorKind = "Mxp-Error-Kind"
	// HeaderOwner is the verified identity of the connection a registration came from:
	// "key:<public key>" (standard base64 of the X25519 key the secure transport
	// authenticated). Only the edge sets it, and only on the secure transport; the
	// registry binds the agent's name to it while the lease lives.
	HeaderOwner = "Mxp-Owner"
)

// OwnerKeyPrefix starts the value of HeaderOwner and of a registry record's owner.
const OwnerKeyPrefix = "key:"

// SetOwnerKey writes HeaderOwner for the verified public key key (base64).
func SetOwnerKey(h nats.Header, key string) { h.Set(HeaderOwner, OwnerKeyPrefix+key) }

// Owner reads HeaderOwner ("" when absent: an unauthenticated registration).
func Owner(h nats.Header) string { return h.Get(HeaderOwner) }

// SetMsgID writes id as HeaderMsgID.
func SetMsgID(h nats.Header, id uint64) { h.Set(HeaderMsgID, formatID(id)) }

// MsgID reads HeaderMsgID; ok is false when the header is absent.
func MsgID(h nats.Header) (id uint64, ok bool, err error) { return parseID(h, HeaderMsgID) }

// SetTraceID writes id as HeaderTraceID.
func SetTraceID(h nats.Header, id uint64) { h.Set(HeaderTraceID, formatID(id)) }

// TraceID reads HeaderTraceID; ok is false when the header is absent.
func TraceID(h nats.Header) (id uint64, ok bool, err error) { return parseID(h, HeaderTraceID) }

// SetAgentID writes the calling agent's id.
func SetAgentID(h nats.Header, id string) { h.Set(HeaderAgentID, id) }

// AgentID reads the calling agent's id ("" when absent).
func AgentID(h nats.Header) string { return h.Get(HeaderAgentID) }

// SetDeadline writes t as HeaderDeadline (Unix milliseconds).
func SetDeadline(h nats.Header, t time.Time) {
	h.Set(HeaderDeadline, strconv.FormatInt(t.UnixMilli(), 10))
}

// Deadline reads HeaderDeadline; ok is false when the header is absent.
func Deadline(h nats.Header) (t time.Time, ok bool, err error) {
	v := h.Get(HeaderDeadline)
	if v == "" {
		return time.Time{}, false, nil
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms <= 0 {
		return time.Time{}, false, fmt.Errorf("bus: header %s: %q is not Unix milliseconds", HeaderDeadline, v)
	}
	return time.UnixMilli(ms), true, nil
}

// SetIDsAndDeadline writes HeaderMsgID, HeaderTraceID (unless traceID is 0) and
// HeaderDeadline (unless deadline is zero) exactly as SetMsgID, SetTraceID and
// SetDeadline do, in two allocations instead of six: the values share one string and
// one backing array. For the hot path of a publisher (the edge sets them on every Call).
func SetIDsAndDeadline(h nats.Header, msgID, traceID uint64, deadline time.Time) {
	var buf [64]byte
	b := appendID(buf[:0], msgID)
	endMsg := len(b)
	if traceID != 0 {
		b = appendID(b, traceID)
	}
	endTrace := len(b)
	if !deadline.IsZero() {
		b = strconv.AppendInt(b, deadline.UnixMilli(), 10)
	}
	all := string(b)
	vals := make([]string, 3)
	vals[0] = all[:endMsg]
	h[HeaderMsgID] = vals[0:1:1]
	if traceID != 0 {
		vals[1] = all[endMsg:endTrace]
		h[HeaderTraceID] = vals[1:2:2]
	}
	if !deadline.IsZero() {
		vals[2] = all[endTrace:]
		h[HeaderDeadline] = vals[2:3:3]
	}
}

func formatID(id uint64) string {
	var b [16]byte
	return string(appendID(b[:0], id))
}

// appendID appends id as the id headers spell it: 16 lower-case hex digits.
func appendID(b []byte, id uint64) []byte {
	const hexdigits = "0123456789abcdef"
	for shift := 60; shift >= 0; shift -= 4 {
		b = append(b, hexdigits[id>>uint(shift)&0xf])
	}
	return b
}

func parseID(h nats.Header, key string) (uint64, bool, error) {
	v := h.Get(key)
	if v == "" {
		return 0, false, nil
	}
	if len(v) != 16 {
		return 0, false, fmt.Errorf("bus: header %s: %q is not 16 hex digits", key, v)
	}
	id, err := strconv.ParseUint(v, 16, 64)
	if err != nil {
		return 0, false, fmt.Errorf("bus: header %s: %q is not 16 hex digits", key, v)
	}
	return id, true, nil
}
