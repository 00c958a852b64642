package mxp

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	payloads := [][]byte{nil, {}, {0x42}, bytes.Repeat([]byte("mxp"), 100), make([]byte, 70000)}
	for _, typ := range MessageTypes() {
		for fl := Flags(0); fl <= FlagsMask; fl++ {
			for _, p := range payloads {
				f := Frame{Type: typ, Flags: fl, MessageID: uint64(typ) << 40, TraceID: ^uint64(fl), Payload: p}
				wire, err := AppendFrame(nil, &f)
				if err != nil {
					t.Fatalf("%v: %v", typ, err)
				}
				if len(wire) != f.EncodedLen() {
					t.Fatalf("len %d, EncodedLen %d", len(wire), f.EncodedLen())
				}
				in := append(wire, "trailing"...)
				g, n, err := Decode(in)
				if err != nil {
					t.Fatalf("%v flags %v: %v", typ, fl, err)
				}
				if n != len(wire) {
					t.Fatalf("n = %d, want %d", n, len(wire))
				}
				if g.Type != f.Type || g.Flags != f.Flags || g.MessageID != f.MessageID || g.TraceID != f.TraceID || !bytes.Equal(g.Payload, f.Payload) {
					t.Fatalf("round trip: got %+v, want %+v", g, f)
				}
				if cap(g.Payload) != len(g.Payload) {
					t.Fatalf("payload cap %d > len %d: appending would overwrite the checksum", cap(g.Payload), len(g.Payload))
				}
			}
		}
	}
}

func TestAppendFrameRefuses(t *testing.T) {
	big := make([]byte, MaxPayloadSize+1)
	tests := []struct {
		name string
		f    Frame
		kind Kind
		msg  string
	}{
		{"type zero", Frame{Type: 0}, ErrInvalidMessageType, "invalid message type: 0x0"},
		{"type 0x13", Frame{Type: 0x13}, ErrInvalidMessageType, "invalid message type: 0x13"},
		{"flag bit 4", Frame{Type: TypeCall, Flags: 0x10}, ErrInvalidFlags, "invalid flags value: 0b00010000"},
		{"16 MiB + 1", Frame{Type: TypeCall, Payload: big}, ErrPayloadTooLarge, "payload too large: 16777217 bytes (max 16777216)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("keep")
			out, err := AppendFrame(dst, &tt.f)
			if !errors.Is(err, tt.kind) {
				t.Fatalf("err = %v, want kind %v", err, tt.kind)
			}
			if err.Error() != tt.msg {
				t.Errorf("message %q, want %q", err.Error(), tt.msg)
			}
			if string(out) != "keep" {
				t.Errorf("dst changed to %q", out)
			}
		})
	}
	// Exactly 16 MiB is allowed, and decodes.
	f := Frame{Type: TypeStreamChunk, Payload: big[:MaxPayloadSize]}
	wire, err := AppendFrame(nil, &f)
	if err != nil {
		t.Fatal(err)
	}
	if _, n, err := Decode(wire); err != nil || n != MaxFrameSize {
		t.Fatalf("16 MiB frame: n=%d err=%v", n, err)
	}
}

// TestAppendFramePayloadInPlace builds payloads in dst's spare capacity, for sizes on both
// sides of the checksum's assembly range (209..992-byte payloads on amd64).
func TestAppendFramePayloadInPlace(t *testing.T) {
	for _, n := range []int{5, 208, 209, 256, 992, 993, 2000} {
		payload := bytes.Repeat([]byte("hello"), n/5+1)[:n]
		buf := make([]byte, 3, 3+FrameOverhead+n)
		copy(buf, "abc")
		spare := buf[len(buf) : len(buf)+FrameOverhead+n]
		copy(spare[HeaderSize:], payload)
		f := Frame{Type: TypeEvent, MessageID: 9, Payload: spare[HeaderSize : HeaderSize+n]}
		out, err := AppendFrame(buf, &f)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := AppendFrame([]byte("abc"), &Frame{Type: TypeEvent, MessageID: 9, Payload: payload})
		if !bytes.Equal(out, want) {
			t.Fatalf("%d-byte payload in place: frame differs from one built from a copy", n)
		}
		g, _, err := Decode(out[3:])
		if err != nil || !bytes.Equal(g.Payload, payload) || string(out[:3]) != "abc" {
			t.Fatalf("%d-byte payload in place: %v", n, err)
		}
	}
}

func TestErrorsIsAs(t *testing.T) {
	good, _ := AppendFrame(nil, &Frame{Type: TypeCall, Payload: []byte{1, 2, 3}})
	mutate := func(i int, v byte) []byte {
		b := bytes.Clone(good)
		b[i] = v
		return b
	}
	tests := []struct {
		in     []byte
		kind   Kind
		target any
		want   any
	}{
		{good[:10], ErrBufferTooSmall, new(BufferTooSmallError), BufferTooSmallError{Needed: 40, Got: 10}},
		{good[:42], ErrBufferTooSmall, new(BufferTooSmallError), BufferTooSmallError{Needed: 43, Got: 42}},
		{mutate(3, 0), ErrInvalidMagic, new(InvalidMagicError), InvalidMagicError{Found: 0x00585031}},
		{mutate(7, 2), ErrReservedFieldNonZero, new(ReservedFieldNonZeroError), ReservedFieldNonZeroError{Field: "header.reserved", Value: 0x200}},
		{mutate(4, 0x33), ErrInvalidMessageType, new(InvalidMessageTypeError), InvalidMessageTypeError{TypeByte: 0x33}},
		{mutate(5, 0x40), ErrInvalidFlags, new(InvalidFlagsError), InvalidFlagsError{Flags: 0x40}},
		{mutate(31, 1), ErrPayloadTooLarge, new(PayloadTooLargeError), PayloadTooLargeError{Size: 1<<56 | 3, Max: MaxPayloadSize}},
	}
	for _, tt := range tests {
		t.Run(tt.kind.String(), func(t *testing.T) {
			_, _, err := Decode(tt.in)
			if !errors.Is(err, tt.kind) {
				t.Fatalf("errors.Is(%v, %v) = false", err, tt.kind)
			}
			for k := ErrBufferTooSmall; k <= ErrChecksumMismatch; k++ {
				if k != tt.kind && errors.Is(err, k) {
					t.Errorf("errors.Is(err, %v) = true", k)
				}
			}
			if !errors.As(err, tt.target) {
				t.Fatalf("errors.As(%T) = false", tt.target)
			}
			if got := fmt.Sprint(derefAny(tt.target)); got != fmt.Sprint(tt.want) {
				t.Errorf("fields %s, want %s", got, fmt.Sprint(tt.want))
			}
			if ErrorKind(err) != tt.kind.String() {
				t.Errorf("ErrorKind = %q", ErrorKind(err))
			}
			wrapped := fmt.Errorf("reading: %w", err)
			if ErrorKind(wrapped) != tt.kind.String() || !errors.Is(wrapped, tt.kind) {
				t.Errorf("kind lost through wrapping: %q", ErrorKind(wrapped))
			}
			var fe FrameError
			if !errors.As(wrapped, &fe) || fe.Kind() != tt.kind {
				t.Errorf("errors.As(FrameError) failed")
			}
		})
	}
	if ErrorKind(nil) != "" || ErrorKind(errors.New("x")) != "" {
		t.Error("ErrorKind of nil or a foreign error is not empty")
	}
}

func derefAny(p any) any {
	switch v := p.(type) {
	case *BufferTooSmallError:
		return *v
	case *InvalidMagicError:
		return *v
	case *ReservedFieldNonZeroError:
		return *v
	case *InvalidMessageTypeError:
		return *v
	case *InvalidFlagsError:
		return *v
	case *PayloadTooLargeError:
		return *v
	}
	return p
}

func TestDecodeDoesNotAllocate(t *testing.T) {
	f := benchFrame(256)
	good, _ := AppendFrame(nil, &f)
	bad := bytes.Clone(good)
	bad[len(bad)-1] ^= 1
	buf := make([]byte, 0, 1024)
	tests := []struct {
		name string
		fn   func()
	}{
		{"decode", func() {
			if _, _, err := Decode(good); err != nil {
				panic(err)
			}
		}},
		{"decode error", func() {
			// Inspected by type assertion, the error stays on the stack.
			if _, _, err := Decode(bad); err == nil || err.(FrameError).Kind() != ErrChecksumMismatch {
				panic("wrong kind")
			}
		}},
		{"decode short", func() {
			if _, _, err := Decode(good[:20]); err == nil || err.(FrameError).Kind() != ErrBufferTooSmall {
				panic("wrong kind")
			}
		}},
		{"append", func() {
			var err error
			if buf, err = AppendFrame(buf[:0], &f); err != nil {
				panic(err)
			}
		}},
	}
	for _, tt := range tests {
		if n := testing.AllocsPerRun(100, tt.fn); n != 0 {
			t.Errorf("%s: %v allocations, want 0", tt.name, n)
		}
	}
}

func TestMessageTypeNames(t *testing.T) {
	tests := []struct {
		in   string
		want MessageType
	}{
		{"call", TypeCall}, {"Call", TypeCall}, {"CALL", TypeCall}, {"0x10", TypeCall}, {"16", TypeCall},
		{"agent_register", TypeAgentRegister}, {"AgentRegister", TypeAgentRegister}, {"agent-discover", TypeAgentDiscover},
		{"agent_heartbeat", TypeAgentHeartbeat}, {"response", TypeResponse}, {"event", TypeEvent},
		{"stream_open", TypeStreamOpen}, {"stream_chunk", TypeStreamChunk}, {"stream_close", TypeStreamClose},
		{"ack", TypeAck}, {"0xF0", TypeAck}, {"error", TypeError}, {"0xf1", TypeError},
	}
	for _, tt := range tests {
		got, err := ParseMessageType(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseMessageType(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "0", "0x13", "256", "calls", "0x1000", "020", "0b10000", "0o20", "-16"} {
		if _, err := ParseMessageType(bad); err == nil {
			t.Errorf("ParseMessageType(%q) succeeded", bad)
		}
	}
	seen := map[string]bool{}
	for _, typ := range MessageTypes() {
		name := typ.String()
		if seen[name] || strings.HasPrefix(name, "MessageType(") {
			t.Errorf("bad or duplicate name %q", name)
		}
		seen[name] = true
		if back, err := ParseMessageType(name); err != nil || back != typ {
			t.Errorf("name %q does not parse back", name)
		}
	}
	if len(seen) != 11 {
		t.Errorf("%d types, want 11", len(seen))
	}
	if got := MessageType(0x42).String(); got != "MessageType(0x42)" {
		t.Errorf("invalid type String = %q", got)
	}
}

func TestFlags(t *testing.T) {
	tests := []struct {
		in   string
		want Flags
		str  string
	}{
		{"requires_ack,final", FlagRequiresAck | FlagFinal, "requires_ack|final"},
		{"0x0c", 0x0c, "requires_ack|final"},
		{"12", 0x0c, "requires_ack|final"},
		{"FINAL|compressed", FlagFinal | FlagCompressed, "compressed|final"},
		{"requires-ack", FlagRequiresAck, "requires_ack"},
		{"encrypted", FlagEncrypted, "encrypted"},
		{"", 0, "0"},
		{"0", 0, "0"},
		{"none", 0, "0"},
		{"0x0f", FlagsMask, "compressed|encrypted|requires_ack|final"},
		{"010", FlagFinal | FlagEncrypted, "encrypted|final"}, // decimal ten, not octal
	}
	for _, tt := range tests {
		got, err := ParseFlags(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseFlags(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
		if got.String() != tt.str {
			t.Errorf("Flags(%#x).String() = %q, want %q", uint8(got), got.String(), tt.str)
		}
	}
	for _, bad := range []string{"0x10", "256", "urgent", "final,,bogus", "0b100", "-1"} {
		if _, err := ParseFlags(bad); err == nil {
			t.Errorf("ParseFlags(%q) succeeded", bad)
		}
	}
	if !(FlagRequiresAck | FlagFinal).Has(FlagFinal) || FlagFinal.Has(FlagFinal|FlagCompressed) {
		t.Error("Has is wrong")
	}
	if got := Flags(0x88).String(); got != "final|0x80" {
		t.Errorf("String with undefined bit = %q", got)
	}
}

func TestKindNames(t *testing.T) {
	want := []string{"BufferTooSmall", "InvalidMagic", "ReservedFieldNonZero", "InvalidMessageType", "InvalidFlags", "PayloadTooLarge", "ChecksumMismatch"}
	for i, name := range want {
		k := Kind(i + 1)
		if k.String() != name {
			t.Errorf("Kind(%d) = %q, want %q", i+1, k.String(), name)
		}
		if !strings.HasPrefix(k.Error(), "mxp: ") {
			t.Errorf("sentinel text %q", k.Error())
		}
	}
}
