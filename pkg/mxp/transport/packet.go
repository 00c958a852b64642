package transport

import (
	"encoding/binary"
	"errors"
)

// Errors of the frame parser; each closes the connection with CloseProtocolError.
var (
	errTruncated    = errors.New("transport: truncated frame")
	errUnknownFrame = errors.New("transport: unknown frame type")
	errBadAck       = errors.New("transport: malformed ACK ranges")
)

// maxVarint is the largest value a varint carries (2^62-1).
const maxVarint = 1<<62 - 1

// appendVarint appends v in the QUIC variable-length encoding (RFC 9000 §16).
func appendVarint(b []byte, v uint64) []byte {
	switch {
	case v < 1<<6:
		return append(b, byte(v))
	case v < 1<<14:
		return append(b, byte(v>>8)|0x40, byte(v))
	case v < 1<<30:
		return append(b, byte(v>>24)|0x80, byte(v>>16), byte(v>>8), byte(v))
	default:
		return binary.BigEndian.AppendUint64(b, v|0xc0<<56)
	}
}

// varintLen is the encoded size of v.
func varintLen(v uint64) int {
	switch {
	case v < 1<<6:
		return 1
	case v < 1<<14:
		return 2
	case v < 1<<30:
		return 4
	default:
		return 8
	}
}

// readVarint decodes a varint at the start of b; n is 0 when b is too short.
func readVarint(b []byte) (v uint64, n int) {
	if len(b) == 0 {
		return 0, 0
	}
	n = 1 << (b[0] >> 6)
	if len(b) < n {
		return 0, 0
	}
	v = uint64(b[0] & 0x3f)
	for i := 1; i < n; i++ {
		v = v<<8 | uint64(b[i])
	}
	return v, n
}

// dataHeader is the cleartext header of a data packet.
type dataHeader struct {
	receiver uint32
	counter  uint64
}

// parseDataHeader reads the 16-byte header of a data packet; b must be at least
// DataOverhead long.
func parseDataHeader(b []byte) (dataHeader, bool) {
	if len(b) < DataOverhead || b[0] != PacketData || b[1]|b[2]|b[3] != 0 {
		return dataHeader{}, false
	}
	return dataHeader{receiver: binary.LittleEndian.Uint32(b[4:]), counter: binary.LittleEndian.Uint64(b[8:])}, true
}

// putDataHeader writes the header of a data packet into b[:DataHeaderSize].
func putDataHeader(b []byte, receiver uint32, counter uint64) {
	b[0], b[1], b[2], b[3] = PacketData, 0, 0, 0
	binary.LittleEndian.PutUint32(b[4:], receiver)
	binary.LittleEndian.PutUint64(b[8:], counter)
}

// ackFrame is a parsed ACK: ranges from highest to lowest, inclusive bounds.
type ackFrame struct {
	delayMicros uint64
	ranges      [MaxAckRanges]struct{ lo, hi uint64 }
	n           int
}

// frameHandler receives the frames of one decrypted packet in order.
type frameHandler interface {
	onPing()
	onAck(a *ackFrame)
	onStream(offset uint64, data []byte) error
	onMaxData(max uint64)
	onDatagram(data []byte)
	onClose(code uint64, reason []byte)
}

// parseFrames walks the frames of a decrypted payload and calls h for each. It returns
// whether any frame was ack-eliciting (everything but PADDING, ACK and CLOSE).
func parseFrames(b []byte, h frameHandler, ack *ackFrame) (ackEliciting bool, err error) {
	for len(b) > 0 {
		t := b[0]
		b = b[1:]
		switch t {
		case FramePadding:
		case FramePing:
			ackEliciting = true
			h.onPing()
		case FrameAck:
			n, err := parseAck(b, ack)
			if err != nil {
				return ackEliciting, err
			}
			b = b[n:]
			h.onAck(ack)
		case FrameStream:
			off, n1 := readVarint(b)
			if n1 == 0 {
				return ackEliciting, errTruncated
			}
			l, n2 := readVarint(b[n1:])
			if n2 == 0 {
				return ackEliciting, errTruncated
			}
			b = b[n1+n2:]
			if l > uint64(len(b)) || off+l > maxVarint {
				return ackEliciting, errTruncated
			}
			ackEliciting = true
			if err := h.onStream(off, b[:l]); err != nil {
				return ackEliciting, err
			}
			b = b[l:]
		case FrameMaxData:
			v, n := readVarint(b)
			if n == 0 {
				return ackEliciting, errTruncated
			}
			b = b[n:]
			ackEliciting = true
			h.onMaxData(v)
		case FrameDatagram:
			l, n := readVarint(b)
			if n == 0 || l > uint64(len(b)-n) {
				return ackEliciting, errTruncated
			}
			ackEliciting = true
			h.onDatagram(b[n : n+int(l)])
			b = b[n+int(l):]
		case FrameClose:
			code, n1 := readVarint(b)
			if n1 == 0 {
				return ackEliciting, errTruncated
			}
			l, n2 := readVarint(b[n1:])
			if n2 == 0 || l > uint64(len(b)-n1-n2) {
				return ackEliciting, errTruncated
			}
			h.onClose(code, b[n1+n2:n1+n2+int(l)])
			return ackEliciting, nil
		default:
			return ackEliciting, errUnknownFrame
		}
	}
	return ackEliciting, nil
}

// parseAck decodes an ACK frame body into a and returns its length.
func parseAck(b []byte, a *ackFrame) (int, error) {
	pos := 0
	next := func() (uint64, bool) {
		v, n := readVarint(b[pos:])
		pos += n
		return v, n > 0
	}
	largest, ok1 := next()
	delay, ok2 := next()
	count, ok3 := next()
	first, ok4 := next()
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return 0, errTruncated
	}
	if first > largest || count >= MaxAckRanges {
		return 0, errBadAck
	}
	a.delayMicros = delay
	a.n = 1
	a.ranges[0].hi, a.ranges[0].lo = largest, largest-first
	lo := largest - first
	for i := uint64(0); i < count; i++ {
		gap, ok1 := next()
		length, ok2 := next()
		if !ok1 || !ok2 {
			return 0, errTruncated
		}
		if lo < gap+2 {
			return 0, errBadAck
		}
		hi := lo - gap - 2
		if length > hi {
			return 0, errBadAck
		}
		lo = hi - length
		a.ranges[a.n].hi, a.ranges[a.n].lo = hi, lo
		a.n++
	}
	return pos, nil
}

// appendAck encodes the received set (ascending spans) as an ACK frame, highest first.
func appendAck(b []byte, recv rangeSet, delayMicros uint64) []byte {
	n := len(recv)
	if n == 0 {
		return b
	}
	count := n - 1
	if count > MaxAckRanges-1 {
		count = MaxAckRanges - 1
	}
	top := recv[n-1]
	b = append(b, FrameAck)
	b = appendVarint(b, top.end-1)
	b = appendVarint(b, delayMicros)
	b = appendVarint(b, uint64(count))
	b = appendVarint(b, top.end-1-top.start)
	lo := top.start
	for i := n - 2; i >= n-1-count; i-- {
		sp := recv[i]
		hi := sp.end - 1
		b = appendVarint(b, lo-hi-2)
		b = appendVarint(b, hi-sp.start)
		lo = sp.start
	}
	return b
}

// appendStreamHeader appends a STREAM frame header for length bytes at offset.
func appendStreamHeader(b []byte, offset uint64, length int) []byte {
	b = append(b, FrameStream)
	b = appendVarint(b, offset)
	return appendVarint(b, uint64(length))
}

// appendClose appends a CLOSE frame.
func appendClose(b []byte, code uint64, reason string) []byte {
	b = append(b, FrameClose)
	b = appendVarint(b, code)
	b = appendVarint(b, uint64(len(reason)))
	return append(b, reason...)
}
