package mxp

import (
	"errors"
	"fmt"
)

// Kind names what was wrong with a frame. The seven kinds are also the sentinel errors
// ErrBufferTooSmall ... ErrChecksumMismatch: errors.Is(err, ErrChecksumMismatch) reports
// whether err (from Decode, AppendFrame, Reader or Writer) is of that kind. Kind's String
// is the reference implementation's name ("BufferTooSmall"); ErrorKind(err) returns it.
type Kind uint8

// The frame error kinds, in the order Decode checks for them (BufferTooSmall is checked
// first for the header and again, after PayloadTooLarge, for the payload).
const (
	ErrBufferTooSmall       Kind = iota + 1 // fewer bytes than the header or the declared payload need
	ErrInvalidMagic                         // bytes 0-3 are not 31 50 58 4D
	ErrReservedFieldNonZero                 // bytes 6-7 are not zero
	ErrInvalidMessageType                   // byte 4 is not one of the eleven types
	ErrInvalidFlags                         // byte 5 sets one of bits 4-7
	ErrPayloadTooLarge                      // the declared payload length exceeds MaxPayloadSize
	ErrChecksumMismatch                     // the XXH3-64 of header and payload differs from the stored one
)

var kindNames = [...]string{
	ErrBufferTooSmall:       "BufferTooSmall",
	ErrInvalidMagic:         "InvalidMagic",
	ErrReservedFieldNonZero: "ReservedFieldNonZero",
	ErrInvalidMessageType:   "InvalidMessageType",
	ErrInvalidFlags:         "InvalidFlags",
	ErrPayloadTooLarge:      "PayloadTooLarge",
	ErrChecksumMismatch:     "ChecksumMismatch",
}

var kindText = [...]string{
	ErrBufferTooSmall:       "mxp: buffer too small",
	ErrInvalidMagic:         "mxp: invalid magic number",
	ErrReservedFieldNonZero: "mxp: reserved field non-zero",
	ErrInvalidMessageType:   "mxp: invalid message type",
	ErrInvalidFlags:         "mxp: invalid flags",
	ErrPayloadTooLarge:      "mxp: payload too large",
	ErrChecksumMismatch:     "mxp: checksum mismatch",
}

// String returns the kind's name as the reference implementation spells it.
func (k Kind) String() string {
	if k == 0 || int(k) >= len(kindNames) {
		return fmt.Sprintf("Kind(%d)", uint8(k))
	}
	return kindNames[k]
}

// Error makes each kind usable as a sentinel with errors.Is.
func (k Kind) Error() string {
	if k == 0 || int(k) >= len(kindText) {
		return fmt.Sprintf("mxp: unknown frame error kind %d", uint8(k))
	}
	return kindText[k]
}

// BufferTooSmallError: the input ends before the frame does. Needed is 40 while the header
// is incomplete, then 40 plus the declared payload length.
type BufferTooSmallError struct {
	Needed int // bytes the frame needs
	Got    int // bytes available
}

func (e BufferTooSmallError) Error() string {
	return fmt.Sprintf("buffer too small: need %d bytes, got %d", e.Needed, e.Got)
}

// Is reports whether target is ErrBufferTooSmall.
func (e BufferTooSmallError) Is(target error) bool { return target == ErrBufferTooSmall }

// InvalidMagicError: bytes 0-3, read as a little-endian u32, are not Magic.
type InvalidMagicError struct {
	Found uint32
}

func (e InvalidMagicError) Error() string {
	return fmt.Sprintf("invalid magic number: expected 0x4D585031, got %#x", e.Found)
}

// Is reports whether target is ErrInvalidMagic.
func (e InvalidMagicError) Is(target error) bool { return target == ErrInvalidMagic }

// ReservedFieldNonZeroError: a reserved field is not zero. Field is "header.reserved" for
// bytes 6-7, Value their little-endian u16.
type ReservedFieldNonZeroError struct {
	Field string
	Value uint16
}

// ReservedHeaderField is the Field of a ReservedFieldNonZeroError for header bytes 6-7.
const ReservedHeaderField = "header.reserved"

func (e ReservedFieldNonZeroError) Error() string {
	return fmt.Sprintf("reserved field %s must be zero (found %d)", e.Field, e.Value)
}

// Is reports whether target is ErrReservedFieldNonZero.
func (e ReservedFieldNonZeroError) Is(target error) bool { return target == ErrReservedFieldNonZero }

// InvalidMessageTypeError: the type byte is not one of the eleven message types.
type InvalidMessageTypeError struct {
	TypeByte uint8
}

func (e InvalidMessageTypeError) Error() string {
	return fmt.Sprintf("invalid message type: %#x", e.TypeByte)
}

// Is reports whether target is ErrInvalidMessageType.
func (e InvalidMessageTypeError) Is(target error) bool { return target == ErrInvalidMessageType }

// InvalidFlagsError: the flags byte sets an undefined bit (4-7).
type InvalidFlagsError struct {
	Flags uint8
}

func (e InvalidFlagsError) Error() string {
	return fmt.Sprintf("invalid flags value: 0b%08b", e.Flags)
}

// Is reports whether target is ErrInvalidFlags.
func (e InvalidFlagsError) Is(target error) bool { return target == ErrInvalidFlags }

// PayloadTooLargeError: the declared (or, when encoding, actual) payload length is over Max.
type PayloadTooLargeError struct {
	Size uint64
	Max  uint64
}

func (e PayloadTooLargeError) Error() string {
	return fmt.Sprintf("payload too large: %d bytes (max %d)", e.Size, e.Max)
}

// Is reports whether target is ErrPayloadTooLarge.
func (e PayloadTooLargeError) Is(target error) bool { return target == ErrPayloadTooLarge }

// ChecksumMismatchError: Expected is the XXH3-64 computed over header and payload, Found
// the value stored in the frame.
type ChecksumMismatchError struct {
	Expected uint64
	Found    uint64
}

func (e ChecksumMismatchError) Error() string {
	return fmt.Sprintf("checksum mismatch: expected %#x, got %#x", e.Expected, e.Found)
}

// Is reports whether target is ErrChecksumMismatch.
func (e ChecksumMismatchError) Is(target error) bool { return target == ErrChecksumMismatch }

// FrameError is the error Decode, AppendFrame, Reader and Writer return for a bad frame.
// It is a small value that holds the kind and its fields without allocating; its Unwrap
// gives the typed error (BufferTooSmallError, ...), so errors.As(err, &BufferTooSmallError{})
// and errors.Is(err, ErrBufferTooSmall) both work, and its message is the typed error's.
type FrameError struct {
	kind Kind
	a, b uint64
}

// Kind returns what was wrong with the frame.
func (e FrameError) Kind() Kind { return e.kind }

// Error returns the message of the typed error, the reference implementation's text.
func (e FrameError) Error() string { return e.Unwrap().Error() }

// Is reports whether target is the sentinel of e's kind.
func (e FrameError) Is(target error) bool {
	k, ok := target.(Kind)
	return ok && k == e.kind
}

// Unwrap returns the typed error with the fields: BufferTooSmallError, InvalidMagicError,
// ReservedFieldNonZeroError, InvalidMessageTypeError, InvalidFlagsError,
// PayloadTooLargeError or ChecksumMismatchError.
func (e FrameError) Unwrap() error {
	switch e.kind {
	case ErrBufferTooSmall:
		return BufferTooSmallError{Needed: int(e.a), Got: int(e.b)}
	case ErrInvalidMagic:
		return InvalidMagicError{Found: uint32(e.a)}
	case ErrReservedFieldNonZero:
		return ReservedFieldNonZeroError{Field: ReservedHeaderField, Value: uint16(e.a)}
	case ErrInvalidMessageType:
		return InvalidMessageTypeError{TypeByte: uint8(e.a)}
	case ErrInvalidFlags:
		return InvalidFlagsError{Flags: uint8(e.a)}
	case ErrPayloadTooLarge:
		return PayloadTooLargeError{Size: e.a, Max: e.b}
	case ErrChecksumMismatch:
		return ChecksumMismatchError{Expected: e.a, Found: e.b}
	}
	return e.kind
}

// ErrorKind returns the name of err's kind: one of the seven frame kinds ("BufferTooSmall",
// ..., "ChecksumMismatch"), "InvalidPayload" for a PayloadError, or "" for nil and for
// errors of no kind. It looks through wrapping (fmt.Errorf("...: %w", err)).
func ErrorKind(err error) string {
	switch e := err.(type) {
	case nil:
		return ""
	case FrameError:
		return e.kind.String()
	}
	var k kinded
	if errors.As(err, &k) {
		return k.kindName()
	}
	return ""
}

// kinded is implemented by every error of this package that has a kind.
type kinded interface{ kindName() string }

func (e FrameError) kindName() string              { return e.kind.String() }
func (k Kind) kindName() string                    { return k.String() }
func (BufferTooSmallError) kindName() string       { return ErrBufferTooSmall.String() }
func (InvalidMagicError) kindName() string         { return ErrInvalidMagic.String() }
func (ReservedFieldNonZeroError) kindName() string { return ErrReservedFieldNonZero.String() }
func (InvalidMessageTypeError) kindName() string   { return ErrInvalidMessageType.String() }
func (InvalidFlagsError) kindName() string         { return ErrInvalidFlags.String() }
func (PayloadTooLargeError) kindName() string      { return ErrPayloadTooLarge.String() }
func (ChecksumMismatchError) kindName() string     { return ErrChecksumMismatch.String() }
