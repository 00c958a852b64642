package mxp

import "encoding/binary"

// MXP carries a 64-bit trace id in every frame and no span id. This is how a frame maps
// onto W3C Trace Context (and so OpenTelemetry), the one definition every layer uses: the
// edge for the bus headers, the services for their spans, the SDK for its own.
//
//   - Trace: the MXP trace id T is the W3C trace id whose first 8 bytes are zero and
//     whose last 8 are T big-endian (W3CTraceID). Back, the last 8 bytes of any W3C trace
//     id are its MXP trace id (TraceIDOfW3C). T = 0 means "no trace" and maps to the
//     all-zero (invalid) trace id.
//   - Span: a message with id M in trace T stands for the span whose id is M XOR T
//     big-endian (MessageSpanID; 1 in the one case where that is zero, M = T). A sender
//     that traces a message gives it the id MessageIDForSpan(T, its span id), so the
//     receiver's span, parented on MessageSpanID, is the child of the sender's span: the
//     parent chain crosses the hop with no field added to the frame.

// W3CTraceID returns the W3C trace id of MXP trace id traceID.
func W3CTraceID(traceID uint64) [16]byte {
	var t [16]byte
	binary.BigEndian.PutUint64(t[8:], traceID)
	return t
}

// TraceIDOfW3C returns the MXP trace id of a W3C trace id: its low 64 bits. It is exact
// (W3CTraceID gives back t) only when t's high 64 bits are zero.
func TraceIDOfW3C(t [16]byte) uint64 { return binary.BigEndian.Uint64(t[8:]) }

// MessageSpanID returns the span id that message msgID of trace traceID stands for:
// msgID XOR traceID, or 1 when that is zero. It is never zero (a valid span id).
func MessageSpanID(traceID, msgID uint64) [8]byte {
	v := msgID ^ traceID
	if v == 0 {
		v = 1
	}
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], v)
	return s
}

// MessageIDForSpan returns the message id whose MessageSpanID in trace traceID is span:
// span XOR traceID. It is 0, not a usable id, when span equals traceID (big-endian) or is
// zero; the sender then keeps an id of its own and the receiver's span is not the child
// of the sender's.
func MessageIDForSpan(traceID uint64, span [8]byte) uint64 {
	v := binary.BigEndian.Uint64(span[:])
	if v == 0 {
		return 0
	}
	return v ^ traceID
}
