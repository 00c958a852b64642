package mxp

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/google/uuid"
)

// The binary payloads: Call and StreamOpen as the reference SPEC lays them out, and the
// profile's Event, StreamChunk, StreamClose and Ack (docs/protocol.md, "Payloads").
// Integers are little-endian, like the frame header. Decode functions do not copy: the
// Data of a decoded payload is a view of the input, as a frame's Payload is of its buffer.

// CallHeaderSize is the fixed part of a Call payload: target id and timeout.
const CallHeaderSize = 16 + 4

// CallPayload is the Call payload: target agent id (16 bytes), timeout in seconds (u32;
// 0 lets the mesh choose), then the data for the target, to the end of the payload.
type CallPayload struct {
	Target         AgentID
	TimeoutSeconds uint32
	Data           []byte
}

// AppendPayload appends the Call encoding to dst. A Call needs a target.
func (p *CallPayload) AppendPayload(dst []byte) ([]byte, error) {
	if p.Target.IsZero() {
		return dst, payloadErr("CallPayload", "missing target")
	}
	dst = append(dst, p.Target[:]...)
	dst = binary.LittleEndian.AppendUint32(dst, p.TimeoutSeconds)
	return append(dst, p.Data...), nil
}

// DecodeCall parses a Call payload without copying: Data aliases b.
func DecodeCall(b []byte) (CallPayload, error) {
	if len(b) < CallHeaderSize {
		return CallPayload{}, payloadErr("CallPayload", "%d bytes, need at least %d", len(b), CallHeaderSize)
	}
	p := CallPayload{
		Target:         AgentID(b[:16]),
		TimeoutSeconds: binary.LittleEndian.Uint32(b[16:]),
		Data:           b[CallHeaderSize:len(b):len(b)],
	}
	if p.Target.IsZero() {
		return CallPayload{}, payloadErr("CallPayload", "missing target")
	}
	return p, nil
}

// StreamID names a stream; the opener picks it at random (NewStreamID).
type StreamID [16]byte

// NewStreamID returns a random stream id.
func NewStreamID() StreamID { return StreamID(uuid.New()) }

// ParseStreamID parses a UUID text form.
func ParseStreamID(s string) (StreamID, error) {
	id, err := ParseAgentID(s)
	if err != nil {
		return StreamID{}, fmt.Errorf("mxp: invalid stream id %q", s)
	}
	return StreamID(id), nil
}

// String returns the UUID text form.
func (id StreamID) String() string { return uuid.UUID(id).String() }

// IsZero reports whether id is the zero (absent) id.
func (id StreamID) IsZero() bool { return id == StreamID{} }

// StreamKind tells the receiver of a StreamOpen how to read the chunks. It is a hint that
// the mesh passes through unchanged; kinds beyond these are for agents to agree on.
type StreamKind uint8

// The stream kinds of the profile.
const (
	StreamKindBytes StreamKind = 0 // opaque bytes
	StreamKindText  StreamKind = 1 // UTF-8 text, e.g. model output token by token
	StreamKindJSON  StreamKind = 2 // each chunk one JSON value
)

// StreamOpenHeaderSize is the fixed part of a StreamOpen payload.
const StreamOpenHeaderSize = 16 + 16 + 1

// StreamOpenPayload is the StreamOpen payload: stream id (16 bytes), target agent id (16
// bytes), kind (1 byte), then optional data to the end (what the opener asks for, e.g. a
// JSON request).
type StreamOpenPayload struct {
	StreamID StreamID
	Target   AgentID
	Kind     StreamKind
	Data     []byte
}

// AppendPayload appends the StreamOpen encoding to dst. It needs a stream id and a target.
func (p *StreamOpenPayload) AppendPayload(dst []byte) ([]byte, error) {
	if err := p.validate(); err != nil {
		return dst, err
	}
	dst = append(dst, p.StreamID[:]...)
	dst = append(dst, p.Target[:]...)
	dst = append(dst, byte(p.Kind))
	return append(dst, p.Data...), nil
}

func (p *StreamOpenPayload) validate() error {
	if p.StreamID.IsZero() {
		return payloadErr("StreamOpenPayload", "missing stream id")
	}
	if p.Target.IsZero() {
		return payloadErr("StreamOpenPayload", "missing target")
	}
	return nil
}

// DecodeStreamOpen parses a StreamOpen payload without copying: Data aliases b.
func DecodeStreamOpen(b []byte) (StreamOpenPayload, error) {
	if len(b) < StreamOpenHeaderSize {
		return StreamOpenPayload{}, payloadErr("StreamOpenPayload", "%d bytes, need at least %d", len(b), StreamOpenHeaderSize)
	}
	p := StreamOpenPayload{
		StreamID: StreamID(b[:16]),
		Target:   AgentID(b[16:32]),
		Kind:     StreamKind(b[32]),
		Data:     b[StreamOpenHeaderSize:len(b):len(b)],
	}
	if err := p.validate(); err != nil {
		return StreamOpenPayload{}, err
	}
	return p, nil
}

// StreamChunkPayload is the StreamChunk payload: stream id (16 bytes), then data to the
// end. Chunks of a stream arrive in the order they were sent.
type StreamChunkPayload struct {
	StreamID StreamID
	Data     []byte
}

// AppendPayload appends the StreamChunk encoding to dst.
func (p *StreamChunkPayload) AppendPayload(dst []byte) ([]byte, error) {
	if p.StreamID.IsZero() {
		return dst, payloadErr("StreamChunkPayload", "missing stream id")
	}
	dst = append(dst, p.StreamID[:]...)
	return append(dst, p.Data...), nil
}

// DecodeStreamChunk parses a StreamChunk payload without copying: Data aliases b.
func DecodeStreamChunk(b []byte) (StreamChunkPayload, error) {
	if len(b) < 16 {
		return StreamChunkPayload{}, payloadErr("StreamChunkPayload", "%d bytes, need at least 16", len(b))
	}
	p := StreamChunkPayload{StreamID: StreamID(b[:16]), Data: b[16:len(b):len(b)]}
	if p.StreamID.IsZero() {
		return StreamChunkPayload{}, payloadErr("StreamChunkPayload", "missing stream id")
	}
	return p, nil
}

// StreamClosePayload is the StreamClose payload: stream id (16 bytes), then, if the
// stream failed, an ErrorPayload in JSON to the end; nothing after the id is a clean end.
type StreamClosePayload struct {
	StreamID StreamID
	Error    *ErrorPayload // nil: the stream ended normally
}

// AppendPayload appends the StreamClose encoding to dst.
func (p *StreamClosePayload) AppendPayload(dst []byte) ([]byte, error) {
	if p.StreamID.IsZero() {
		return dst, payloadErr("StreamClosePayload", "missing stream id")
	}
	out := append(dst, p.StreamID[:]...)
	if p.Error != nil {
		var err error
		if out, err = p.Error.AppendPayload(out); err != nil {
			return dst, err
		}
	}
	return out, nil
}

// DecodeStreamClose parses a StreamClose payload.
func DecodeStreamClose(b []byte) (StreamClosePayload, error) {
	if len(b) < 16 {
		return StreamClosePayload{}, payloadErr("StreamClosePayload", "%d bytes, need at least 16", len(b))
	}
	p := StreamClosePayload{StreamID: StreamID(b[:16])}
	if p.StreamID.IsZero() {
		return StreamClosePayload{}, payloadErr("StreamClosePayload", "missing stream id")
	}
	if len(b) > 16 {
		e, err := DecodeErrorPayload(b[16:])
		if err != nil {
			return StreamClosePayload{}, &PayloadError{Payload: "StreamClosePayload", Reason: "bad error", Err: err}
		}
		p.Error = &e
	}
	return p, nil
}

// EventPayload is the Event payload: topic length (u8), topic, then data to the end. A
// topic is 1 to MaxTopicLen bytes: dot-separated tokens of letters, digits, '_' and '-'
// ("build.finished", "tool-42.progress"), so that it maps onto a bus subject as it is.
type EventPayload struct {
	Topic string
	Data  []byte
}

// CheckTopic reports whether topic follows the profile's topic rules.
func CheckTopic(topic string) error {
	if topic == "" {
		return payloadErr("EventPayload", "empty topic")
	}
	if len(topic) > MaxTopicLen {
		return payloadErr("EventPayload", "topic is %d bytes (max %d)", len(topic), MaxTopicLen)
	}
	for _, tok := range strings.Split(topic, ".") {
		if tok == "" {
			return payloadErr("EventPayload", "topic %q has an empty token", topic)
		}
		for i := 0; i < len(tok); i++ {
			c := tok[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
				return payloadErr("EventPayload", "topic %q: character %q not allowed (letters, digits, '_', '-', '.')", topic, c)
			}
		}
	}
	return nil
}

// AppendPayload appends the Event encoding to dst.
func (p *EventPayload) AppendPayload(dst []byte) ([]byte, error) {
	if err := CheckTopic(p.Topic); err != nil {
		return dst, err
	}
	dst = append(dst, byte(len(p.Topic)))
	dst = append(dst, p.Topic...)
	return append(dst, p.Data...), nil
}

// DecodeEvent parses an Event payload; Data aliases b (the topic is copied into a string).
func DecodeEvent(b []byte) (EventPayload, error) {
	if len(b) < 1 {
		return EventPayload{}, payloadErr("EventPayload", "empty payload")
	}
	n := int(b[0])
	if len(b) < 1+n {
		return EventPayload{}, payloadErr("EventPayload", "topic of %d bytes but only %d follow", n, len(b)-1)
	}
	p := EventPayload{Topic: string(b[1 : 1+n]), Data: b[1+n : len(b) : len(b)]}
	if err := CheckTopic(p.Topic); err != nil {
		return EventPayload{}, err
	}
	return p, nil
}

// AckPayloadSize is the size of an Ack payload.
const AckPayloadSize = 8

// AckPayload is the Ack payload: the message id (u64) of the frame being acknowledged,
// which had FlagRequiresAck. The Ack frame carries the same id in its header; the payload
// states it explicitly so an Ack can also acknowledge a frame by another id.
type AckPayload struct {
	MessageID uint64
}

// AppendPayload appends the Ack encoding to dst.
func (p *AckPayload) AppendPayload(dst []byte) ([]byte, error) {
	return binary.LittleEndian.AppendUint64(dst, p.MessageID), nil
}

// DecodeAck parses an Ack payload.
func DecodeAck(b []byte) (AckPayload, error) {
	if len(b) != AckPayloadSize {
		return AckPayload{}, payloadErr("AckPayload", "%d bytes, want %d", len(b), AckPayloadSize)
	}
	return AckPayload{MessageID: binary.LittleEndian.Uint64(b)}, nil
}

// MarshalText encodes a stream id as its UUID text form.
func (id StreamID) MarshalText() ([]byte, error) { return uuid.UUID(id).MarshalText() }

// UnmarshalText parses a UUID text form; the empty string is the zero id.
func (id *StreamID) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*id = StreamID{}
		return nil
	}
	v, err := ParseStreamID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}
