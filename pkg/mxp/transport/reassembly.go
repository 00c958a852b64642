package transport

import (
	"errors"
	"slices"
	"sort"
	"sync/atomic"
)

var (
	errMessageLength  = errors.New("transport: message length above MaxMessageSize")
	errLengthEncoding = errors.New("transport: message length prefix not in its shortest encoding")
)

// Receive memory is bounded by construction (docs/protocol.md, "Receive memory"):
//   - a message's buffer grows with the bytes that arrived, never with its declared
//     length (at most twice what arrived, while it fills);
//   - a message above the application's limit (Config.MaxMessageSize) is refused from its
//     length prefix: only its first OversizePrefix bytes are kept, the rest is discarded
//     as it arrives (still counted by flow control, so the stream stays in sync);
//   - out-of-order bytes are kept as exact-size copies (fragments), at most
//     MaxRecvFragments per connection, each charged its length plus fragmentOverhead;
//   - every byte held (reassembly, received messages and datagrams not yet taken) is
//     charged against the endpoint's receive budget (Config.RecvBudget); data that does
//     not fit is dropped unacknowledged, and the sender retransmits it later. New work
//     (out-of-order bytes, a message started by a connection that holds nothing, a
//     datagram) may fill only half the budget; the other half is kept for progress: the
//     in-order bytes of a connection that already holds a partial message or fragments,
//     which only more of its bytes can free. Without that reserve, connections whose
//     partial messages (or one connection whose fragments) filled the budget would wait
//     for each other forever.

// fragmentOverhead is what one out-of-order fragment costs beyond its bytes: its entry
// in the fragment list and the allocator's rounding. It is charged so that a peer sending
// one byte per fragment pays for the memory it makes the receiver hold.
const fragmentOverhead = 48

// maxFragment is the size up to which contiguous out-of-order bytes are appended to one
// fragment (fewer fragments on a lossy bulk path, where a hole is followed by a run).
const maxFragment = 64 << 10

// recvBudget is an endpoint's receive budget: the bytes its connections hold in
// reassembly and receive queues, across all of them.
type recvBudget struct {
	limit int64
	held  atomic.Int64
}

// take charges n bytes; it reports false (and charges nothing) when they do not fit:
// within the whole budget for progress, within half of it for new work.
func (b *recvBudget) take(n int64, progress bool) bool {
	limit := b.limit
	if !progress {
		limit /= 2
	}
	if b.held.Add(n) > limit {
		b.held.Add(-n)
		return false
	}
	return true
}

// give returns n bytes charged by take.
func (b *recvBudget) give(n int64) { b.held.Add(-n) }

// messageSink is where a recvStream delivers what it parses and charges what it holds
// (the Conn, with c.mu held; tests use their own).
type messageSink interface {
	// deliverLocked takes a complete message (which becomes the sink's).
	deliverLocked(m []byte)
	// refuseLocked reports a message above maxMessage: its first bytes and declared size.
	refuseLocked(prefix []byte, size uint64)
	// chargeRecv charges n held bytes; false: over budget, hold nothing. progress: the
	// bytes are in order and the stream already holds something only they can free.
	chargeRecv(n int, progress bool) bool
	// releaseRecv returns n bytes charged by chargeRecv.
	releaseRecv(n int)
	// maxMessage is the application's message limit, in bytes.
	maxMessage() uint64
}

// fragment is a run of out-of-order stream bytes.
type fragment struct {
	off uint64
	b   []byte
}

func (f *fragment) end() uint64 { return f.off + uint64(len(f.b)) }

// recvStream is the receiving half: it reassembles the stream, parses length-prefixed
// messages and enforces the flow-control limit it advertises.
type recvStream struct {
	frags    []fragment // out-of-order bytes, by offset, not overlapping, all above readOff
	readOff  uint64     // bytes below are parsed
	consumed uint64     // bytes of messages the application has taken
	maxData  uint64     // the limit advertised to the peer
	window   uint64

	hdr  [8]byte // the length prefix being read
	hdrN int
	body []byte // the message being filled: the bytes that arrived so far
	want int    // its declared length (0: no body being read)

	tooLarge uint64 // declared length of the refused message being read (0: none)
	skip     uint64 // its bytes still to come
	prefix   []byte // its first bytes, kept for refuseLocked
}

func (r *recvStream) init(cfg *Config) {
	r.window = uint64(cfg.RecvWindow)
	r.maxData = r.window
}

// write accepts a STREAM frame and delivers every message it completes. It reports
// false when the bytes did not fit in the receive budget or the fragment limit: then
// nothing of them beyond what was already held may be assumed kept, and the packet must
// not be acknowledged. Contract: c.mu held (read loop).
func (r *recvStream) write(off uint64, data []byte, s messageSink) (bool, error) {
	end := off + uint64(len(data))
	if end > r.maxData {
		return false, errFlowControl
	}
	if end <= r.readOff {
		return true, nil // duplicate
	}
	if off < r.readOff {
		data = data[r.readOff-off:]
		off = r.readOff
	}
	if off > r.readOff {
		return r.store(off, data, s), nil
	}
	if !s.chargeRecv(len(data), r.holding()) {
		return false, nil
	}
	skipped, err := r.parse(data, s)
	s.releaseRecv(skipped)
	if err != nil {
		return false, err
	}
	r.readOff = end
	return true, r.drain(s)
}

// drain parses the fragments that the in-order bytes have reached. A fragment's bytes
// stay charged as in-order bytes (except those already covered or discarded); its
// overhead is returned.
func (r *recvStream) drain(s messageSink) error {
	k := 0
	var err error
	for k < len(r.frags) && r.frags[k].off <= r.readOff && err == nil {
		f := &r.frags[k]
		k++
		release := fragmentOverhead
		if fe := f.end(); fe <= r.readOff {
			release += len(f.b)
		} else {
			covered := r.readOff - f.off
			var skipped int
			skipped, err = r.parse(f.b[covered:], s)
			release += int(covered) + skipped
			r.readOff = fe
		}
		s.releaseRecv(release)
	}
	if k > 0 {
		n := copy(r.frags, r.frags[k:])
		clear(r.frags[n:])
		r.frags = r.frags[:n]
		if n == 0 && cap(r.frags) > 64 {
			r.frags = nil // a burst of reordering is over: let its array go
		}
	}
	return err
}

// store keeps the bytes of [off, off+len(data)) that no fragment holds yet, as exact-size
// copies (appended to the fragment just before them when contiguous). It reports false
// when the budget or the fragment limit refused some of them.
func (r *recvStream) store(off uint64, data []byte, s messageSink) bool {
	end := off + uint64(len(data))
	i := sort.Search(len(r.frags), func(i int) bool { return r.frags[i].end() > off })
	pos := off
	for pos < end {
		if i < len(r.frags) && r.frags[i].off <= pos {
			pos = max(pos, r.frags[i].end())
			i++
			continue
		}
		gapEnd := end
		if i < len(r.frags) && r.frags[i].off < end {
			gapEnd = r.frags[i].off
		}
		b := data[pos-off : gapEnd-off]
		if prev := i - 1; prev >= 0 && r.frags[prev].end() == pos && len(r.frags[prev].b)+len(b) <= maxFragment {
			if !s.chargeRecv(len(b), false) {
				return false
			}
			r.frags[prev].b = append(r.frags[prev].b, b...)
		} else {
			if len(r.frags) >= MaxRecvFragments || !s.chargeRecv(len(b)+fragmentOverhead, false) {
				return false
			}
			r.frags = slices.Insert(r.frags, i, fragment{off: pos, b: append([]byte(nil), b...)})
			i++
		}
		pos = gapEnd
	}
	return true
}

// parse consumes in-order stream bytes: length prefixes, message bodies, and the bodies
// of refused messages, which it discards after their prefix. It returns how many bytes
// it discarded (they are not held).
func (r *recvStream) parse(b []byte, s messageSink) (skipped int, err error) {
	for len(b) > 0 {
		switch {
		case r.want > 0:
			n := min(len(b), r.want-len(r.body))
			r.body = growTo(r.body, n, r.want)
			r.body = append(r.body, b[:n]...)
			b = b[n:]
			if len(r.body) == r.want {
				s.deliverLocked(r.body)
				r.body, r.want = nil, 0
			}
		case r.tooLarge > 0:
			if keep := cap(r.prefix) - len(r.prefix); keep > 0 {
				n := min(len(b), keep)
				r.prefix = append(r.prefix, b[:n]...)
				b = b[n:]
				r.skip -= uint64(n)
				if len(r.prefix) == cap(r.prefix) {
					s.refuseLocked(r.prefix, r.tooLarge)
					r.prefix = nil
				}
			} else {
				n := int(min(uint64(len(b)), r.skip))
				b = b[n:]
				r.skip -= uint64(n)
				skipped += n
			}
			if r.skip == 0 && r.prefix == nil {
				r.tooLarge = 0
			}
		default:
			r.hdr[r.hdrN] = b[0]
			r.hdrN++
			b = b[1:]
			if r.hdrN < 1<<(r.hdr[0]>>6) {
				continue
			}
			l, _ := readVarint(r.hdr[:r.hdrN])
			minimal := varintLen(l) == r.hdrN
			r.hdrN = 0
			switch {
			case l > MaxMessageSize:
				return skipped, errMessageLength
			case !minimal:
				// Flow-control credit and the receive budget count a message as
				// varintLen(length) + length bytes; a longer prefix would make them drift.
				return skipped, errLengthEncoding
			case l > s.maxMessage():
				r.tooLarge, r.skip = l, l
				r.prefix = make([]byte, 0, min(OversizePrefix, l))
			case l == 0:
				s.deliverLocked([]byte{})
			default:
				r.want = int(l)
			}
		}
	}
	return skipped, nil
}

// growTo makes room in b for n more bytes of a message of want bytes: the buffer holds
// at most twice what arrived (doubling, capped at want), so that a declared length
// allocates nothing by itself. A message that arrives whole gets one exact allocation.
func growTo(b []byte, n, want int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	c := min(want, max(len(b)+n, 2*cap(b)))
	nb := make([]byte, len(b), c)
	copy(nb, b)
	return nb
}

// consume records that the application has taken messages up to total stream bytes;
// it reports whether the limit moved by 1/8 of the window (worth a MAX_DATA frame).
func (r *recvStream) consume(total uint64) bool {
	if total > r.consumed {
		r.consumed = total
	}
	if limit := r.consumed + r.window; limit-r.maxData >= r.window/8 {
		r.maxData = limit
		return true
	}
	return false
}

// holding reports whether the stream holds bytes that only more in-order bytes can free:
// a partial message (or length prefix) or out-of-order fragments.
func (r *recvStream) holding() bool {
	return r.want > 0 || r.tooLarge > 0 || r.hdrN > 0 || len(r.frags) > 0
}
