package mxp

import (
	"encoding/binary"
	"slices"

	"github.com/mxp-mesh/mesh/pkg/mxp/internal/checksum"
	"github.com/zeebo/xxh3"
)

// The numbers of the frame format (docs/protocol.md, "Frame"). Integers on the wire are
// little-endian.
const (
	// Magic is the u32 at offset 0: the bytes 31 50 58 4D ("1PXM").
	Magic uint32 = 0x4D585031
	// HeaderSize is the length of the fixed header: magic, type, flags, reserved, message
	// id, trace id, payload length.
	HeaderSize = 32
	// ChecksumSize is the length of the trailing XXH3-64 (seed 0) of header and payload.
	ChecksumSize = 8
	// FrameOverhead is the size of a frame with an empty payload.
	FrameOverhead = HeaderSize + ChecksumSize
	// MaxPayloadSize is the largest payload a frame may carry: 16 MiB.
	MaxPayloadSize = 16 << 20
	// MaxFrameSize is the largest encoded frame.
	MaxFrameSize = FrameOverhead + MaxPayloadSize
)

// Header field offsets.
const (
	offMagic     = 0
	offType      = 4
	offFlags     = 5
	offReserved  = 6
	offMessageID = 8
	offTraceID   = 16
	offLength    = 24
)

// Frame is one MXP message. A decoded Frame's Payload is a view of the decoded buffer (no
// copy): it is valid as long as that buffer is, and its capacity ends with the payload, so
// appending to it never overwrites the checksum or the next frame.
type Frame struct {
	Type      MessageType
	Flags     Flags
	MessageID uint64 // unique per sender; a Response or Ack carries the id it answers
	TraceID   uint64 // correlates the messages of one request across agents and services
	Payload   []byte
}

// EncodedLen returns the number of bytes AppendFrame writes for f.
func (f *Frame) EncodedLen() int { return FrameOverhead + len(f.Payload) }

// AppendFrame appends the encoding of f to dst and returns the extended slice. It
// allocates only when dst lacks the capacity (f.EncodedLen() bytes past len(dst)).
//
// It refuses, with a FrameError and dst unchanged, a frame that Decode would reject: an
// invalid type (InvalidMessageType), undefined flag bits (InvalidFlags) or a payload over
// MaxPayloadSize (PayloadTooLarge).
//
// f.Payload may already sit at its place in dst's spare capacity (dst[len(dst)+HeaderSize:]),
// which lets a caller build a payload in place; any other overlap with dst's spare capacity
// corrupts the frame.
func AppendFrame(dst []byte, f *Frame) ([]byte, error) {
	if !validType[f.Type] {
		return dst, FrameError{kind: ErrInvalidMessageType, a: uint64(f.Type)}
	}
	if f.Flags&^FlagsMask != 0 {
		return dst, FrameError{kind: ErrInvalidFlags, a: uint64(f.Flags)}
	}
	size := len(f.Payload)
	if size > MaxPayloadSize {
		return dst, FrameError{kind: ErrPayloadTooLarge, a: uint64(size), b: MaxPayloadSize}
	}
	start := len(dst)
	dst = slices.Grow(dst, FrameOverhead+size)[:start+FrameOverhead+size]
	// The header is four little-endian words: magic, type, flags and the zero reserved
	// bytes make the first. CopySum stores them and the payload and hashes the frame.
	end := start + HeaderSize + size
	first := uint64(Magic) | uint64(f.Type)<<(8*offType) | uint64(f.Flags)<<(8*offFlags)
	sum := checksum.CopySum(dst[start:end], [4]uint64{first, f.MessageID, f.TraceID, uint64(size)}, f.Payload)
	binary.LittleEndian.PutUint64(dst[end:], sum)
	return dst, nil
}

// Decode decodes the frame at the start of b. It returns the frame, whose Payload aliases
// b, and n, the number of bytes the frame used; bytes after b[:n] are not looked at and are
// left to the caller (the next frame of a stream, or trailing garbage).
//
// Decode checks, in this order, as the reference implementation does: len(b) >= 40, magic,
// reserved bytes, type, flags, declared payload length <= MaxPayloadSize, len(b) >= 40 +
// payload length, checksum. The first failure is returned as a FrameError (see its Unwrap
// for the typed errors with their fields).
//
// Decode does not allocate. On error it returns a FrameError, a 24-byte value built in the
// caller's frame (Decode is inlined): a caller that inspects it by type assertion,
// err.(FrameError).Kind(), keeps it on the stack; one that keeps it, returns it or hands it
// to errors.Is, errors.As or ErrorKind moves it to the heap (one 24-byte allocation).
func Decode(b []byte) (f Frame, n int, err error) {
	n, fe := decodeInto(&f, b) // on error f stays zero and n is 0
	if fe.kind != 0 {
		err = fe
	}
	return f, n, err
}

// decodeInto is Decode with the error as a concrete value; Decode stays small enough to be
// inlined, so the conversion of the error to an interface happens in the caller's frame.
func decodeInto(f *Frame, b []byte) (int, FrameError) {
	if len(b) < FrameOverhead {
		return 0, FrameError{kind: ErrBufferTooSmall, a: FrameOverhead, b: uint64(len(b))}
	}
	h := (*[HeaderSize]byte)(b)
	size := binary.LittleEndian.Uint64(h[offLength:])
	// One test for the common case of a well-formed header; checkHeader names the fault.
	if binary.LittleEndian.Uint32(h[offMagic:]) != Magic || h[offReserved]|h[offReserved+1] != 0 ||
		!validType[h[offType]] || h[offFlags]&^byte(FlagsMask) != 0 || size > MaxPayloadSize {
		return 0, checkHeader(h)
	}
	end := HeaderSize + int(size)
	if len(b) < end+ChecksumSize {
		return 0, FrameError{kind: ErrBufferTooSmall, a: uint64(end + ChecksumSize), b: uint64(len(b))}
	}
	found := binary.LittleEndian.Uint64(b[end:])
	// checksum.Sum, without its call frame for the sizes it leaves to xxh3.Hash.
	var sum uint64
	if checksum.Fast(end) {
		sum = checksum.Sum(b[:end])
	} else {
		sum = xxh3.Hash(b[:end])
	}
	if sum != found {
		return 0, FrameError{kind: ErrChecksumMismatch, a: sum, b: found}
	}
	f.Type = MessageType(h[offType])
	f.Flags = Flags(h[offFlags])
	f.MessageID = binary.LittleEndian.Uint64(h[offMessageID:])
	f.TraceID = binary.LittleEndian.Uint64(h[offTraceID:])
	f.Payload = b[HeaderSize:end:end]
	return end + ChecksumSize, FrameError{}
}

// checkHeader validates a header in Decode's order (magic, reserved, type, flags, payload
// length) and returns the first fault, or a zero FrameError for a good header.
func checkHeader(h *[HeaderSize]byte) FrameError {
	if m := binary.LittleEndian.Uint32(h[offMagic:]); m != Magic {
		return FrameError{kind: ErrInvalidMagic, a: uint64(m)}
	}
	if r := binary.LittleEndian.Uint16(h[offReserved:]); r != 0 {
		return FrameError{kind: ErrReservedFieldNonZero, a: uint64(r)}
	}
	if t := h[offType]; !validType[t] {
		return FrameError{kind: ErrInvalidMessageType, a: uint64(t)}
	}
	if fl := Flags(h[offFlags]); fl&^FlagsMask != 0 {
		return FrameError{kind: ErrInvalidFlags, a: uint64(fl)}
	}
	if size := binary.LittleEndian.Uint64(h[offLength:]); size > MaxPayloadSize {
		return FrameError{kind: ErrPayloadTooLarge, a: size, b: MaxPayloadSize}
	}
	return FrameError{}
}

// PeekMessageID returns the message id of the frame that b starts with (its first 16
// bytes, magic checked), or 0: what an answer to a refused or undecodable frame names.
func PeekMessageID(b []byte) uint64 {
	if len(b) < offMessageID+8 || binary.LittleEndian.Uint32(b) != Magic {
		return 0
	}
	return binary.LittleEndian.Uint64(b[offMessageID:])
}
