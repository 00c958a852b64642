package mxp

import (
	"fmt"
	"strings"
)

// Flags is the frame's flag byte (header offset 5). Only the low four bits are defined;
// Decode rejects a frame with any of bits 4-7 set (InvalidFlagsError).
type Flags uint8

// The flags of MXP 0.2.0.
const (
	FlagCompressed  Flags = 0x01 // the payload is compressed (the profile names no codec yet; see docs/protocol.md)
	FlagEncrypted   Flags = 0x02 // the payload is encrypted end to end above the transport
	FlagRequiresAck Flags = 0x04 // the receiver answers with an Ack carrying this message id
	FlagFinal       Flags = 0x08 // the last frame of a stream; on AgentHeartbeat: deregister

	// FlagsMask holds every defined flag bit.
	FlagsMask Flags = FlagCompressed | FlagEncrypted | FlagRequiresAck | FlagFinal
)

var flagNames = [...]struct {
	f    Flags
	name string
}{
	{FlagCompressed, "compressed"},
	{FlagEncrypted, "encrypted"},
	{FlagRequiresAck, "requires_ack"},
	{FlagFinal, "final"},
}

// Has reports whether every bit of flag is set in f.
func (f Flags) Has(flag Flags) bool { return f&flag == flag }

// Valid reports whether f uses only the defined bits.
func (f Flags) Valid() bool { return f&^FlagsMask == 0 }

// String names the set flags joined by "|" ("requires_ack|final"), "0" for none, and
// appends undefined bits in hex ("final|0x80").
func (f Flags) String() string {
	if f == 0 {
		return "0"
	}
	var parts []string
	for _, e := range flagNames {
		if f.Has(e.f) {
			parts = append(parts, e.name)
		}
	}
	if rest := f &^ FlagsMask; rest != 0 {
		parts = append(parts, fmt.Sprintf("0x%02x", uint8(rest)))
	}
	return strings.Join(parts, "|")
}

// ParseFlags accepts a number in decimal or 0x-hex ("12", "0x0c") or a list of flag names
// separated by commas or "|" ("requires_ack,final", "FINAL|compressed"); names ignore case
// and dashes. The empty string and "0" mean no flags. Undefined bits are an error.
func ParseFlags(s string) (Flags, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.EqualFold(s, "none") {
		return 0, nil
	}
	if n, err := parseByte(s); err == nil {
		f := Flags(n)
		if !f.Valid() {
			return 0, fmt.Errorf("mxp: flags %s set undefined bits 0x%02x", s, uint8(f&^FlagsMask))
		}
		return f, nil
	}
	var f Flags
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '|' }) {
		name := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(part)), "-", "_")
		found := false
		for _, e := range flagNames {
			if e.name == name || strings.ReplaceAll(e.name, "_", "") == name {
				f |= e.f
				found = true
				break
			}
		}
		if !found {
			return 0, fmt.Errorf("mxp: unknown flag %q (want compressed, encrypted, requires_ack, final or a number such as 0x0c)", strings.TrimSpace(part))
		}
	}
	return f, nil
}
