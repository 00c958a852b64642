package mxp

import (
	"fmt"
	"strconv"
	"strings"
)

// MessageType is the frame's type byte (header offset 4). Only the eleven types below are
// valid on the wire; any other byte is rejected by Decode with InvalidMessageTypeError.
type MessageType uint8

// The message types of MXP 0.2.0.
const (
	TypeAgentRegister  MessageType = 0x01 // an agent announces itself (JSON RegisterRequest)
	TypeAgentDiscover  MessageType = 0x02 // find agents by capability (JSON DiscoverRequest)
	TypeAgentHeartbeat MessageType = 0x03 // keep a registration alive (JSON HeartbeatRequest)
	TypeCall           MessageType = 0x10 // a request to another agent or service (CallPayload)
	TypeResponse       MessageType = 0x11 // the answer to a Call; carries the Call's message id
	TypeEvent          MessageType = 0x12 // a one-way publication (EventPayload)
	TypeStreamOpen     MessageType = 0x20 // opens a stream (StreamOpenPayload)
	TypeStreamChunk    MessageType = 0x21 // data on an open stream (StreamChunkPayload)
	TypeStreamClose    MessageType = 0x22 // ends a stream (StreamClosePayload)
	TypeAck            MessageType = 0xF0 // acknowledges a message that asked for it (AckPayload)
	TypeError          MessageType = 0xF1 // reports a failure (JSON ErrorPayload)
)

// messageTypeNames lists every valid type with its canonical name, in wire order.
var messageTypeNames = [...]struct {
	t    MessageType
	name string
}{
	{TypeAgentRegister, "AgentRegister"},
	{TypeAgentDiscover, "AgentDiscover"},
	{TypeAgentHeartbeat, "AgentHeartbeat"},
	{TypeCall, "Call"},
	{TypeResponse, "Response"},
	{TypeEvent, "Event"},
	{TypeStreamOpen, "StreamOpen"},
	{TypeStreamChunk, "StreamChunk"},
	{TypeStreamClose, "StreamClose"},
	{TypeAck, "Ack"},
	{TypeError, "Error"},
}

// validType is indexed by the type byte; it makes the check in Decode a single load.
var validType = func() (v [256]bool) {
	for _, e := range messageTypeNames {
		v[e.t] = true
	}
	return v
}()

// MessageTypes returns every valid message type in wire order.
func MessageTypes() []MessageType {
	out := make([]MessageType, len(messageTypeNames))
	for i, e := range messageTypeNames {
		out[i] = e.t
	}
	return out
}

// Valid reports whether t is one of the eleven message types.
func (t MessageType) Valid() bool { return validType[t] }

// String returns the type's name ("Call", "AgentRegister", ...) or "MessageType(0x42)" for
// a byte that is not a valid type.
func (t MessageType) String() string {
	for _, e := range messageTypeNames {
		if e.t == t {
			return e.name
		}
	}
	return fmt.Sprintf("MessageType(0x%02x)", uint8(t))
}

// ParseMessageType accepts a type's name in any case, with or without underscores or
// dashes ("Call", "call", "agent_register", "stream-open"), or its number in decimal or
// 0x-hex ("16", "0x10"). A number that is not a valid type is an error.
func ParseMessageType(s string) (MessageType, error) {
	s = strings.TrimSpace(s)
	if n, err := parseByte(s); err == nil {
		t := MessageType(n)
		if !t.Valid() {
			return 0, fmt.Errorf("mxp: unknown message type %s", s)
		}
		return t, nil
	}
	norm := strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(s))
	for _, e := range messageTypeNames {
		if strings.ToLower(e.name) == norm {
			return e.t, nil
		}
	}
	return 0, fmt.Errorf("mxp: unknown message type %q (want a name such as call or agent_register, or a number such as 0x10)", s)
}

// parseByte parses a number in decimal or 0x-hex that fits in a byte. Unlike
// strconv.ParseUint with base 0, a leading 0 does not mean octal: "010" is ten.
func parseByte(s string) (uint8, error) {
	base := 10
	if len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		s, base = s[2:], 16
	}
	n, err := strconv.ParseUint(s, base, 8)
	return uint8(n), err
}
