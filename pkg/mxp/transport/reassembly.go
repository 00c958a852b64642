package transport

import (
	"errors"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

var (
	errMessageLength  = errors.New("transport: message length above MaxMessageSize")
	errLengthEncoding = errors.New("transport: message length prefix not in its shortest encoding")
)

// Receive memory is bounded by construction, and the bound never locks up
// (docs/protocol.md §5.2, "Receive memory"). Invariants:
//
//  1. Bounded. Every byte held (partial and received messages not yet taken, out-of-order
//     fragments, queued datagrams) is charged against the endpoint's receive budget
//     (Config.RecvBudget) before it is held; data that does not fit is dropped
//     unacknowledged and the sender retransmits it. A message's buffer grows with the
//     bytes that arrived (at most bodyGrowth times them, never above its reservation), so
//     memory held stays within the budget.
//  2. Reservation. A message is charged whole when its length prefix is parsed: the
//     prefix plus its declared length (for a message over the application's limit, the
//     prefix plus the OversizePrefix bytes kept), all or nothing, without allocating it.
//     If the reservation does not fit, the message has not started: the bytes after its
//     prefix are refused (not acknowledged) and the reservation is retried when more of
//     the stream arrives, and every RecvRetryInterval while fragments wait behind it.
//     The in-order bytes of a reserved message are never refused and cost nothing more,
//     so a started message always completes while its sender keeps sending.
//  3. New work is kept to half. Out-of-order fragments (beyond the message being read)
//     and datagrams are charged only
//     while the endpoint holds less than half the budget; since a reservation is at most
//     MaxMessageSize + 8 ≤ RecvBudget/2 (Config validation), fragments alone can never
//     keep a reservation out. A fragment's charge is returned as its bytes are parsed
//     (they are then covered by the reservation of their message).
//  4. Per-connection caps. One connection may hold at most connRecvCap (half the budget,
//     at least two largest messages) in all, and at most maxOutOfOrder (MaxRecvOutOfOrder,
//     at most an eighth of the budget) and MaxRecvFragments fragments out of order.
//  5. A started message holds at most its reservation, and the list of its runs. Out-of-
//     order bytes inside the message being read (a loss being repaired) are not charged:
//     while fewer than 1/bodyGrowth of the message arrived they are copies beside a
//     buffer of at most that size (together under twice 1/bodyGrowth of the message),
//     and once that much arrived the buffer has the message's size and they are written
//     in place (frags of kind fragInPlace, which alias the buffer), in at most maxInPlace
//     runs, whose list entries cost at most 1/bodyGrowth of the message. So the sender of
//     a started message is not refused while it repairs a loss (unless it scatters more
//     runs than that), even while the application has not taken the message before (two
//     largest messages fill the connection's cap).
//  6. A way out. When data is refused over the budget and nothing was returned to it
//     for RecvStallTimeout, a Listener closes the connection that holds the most, with
//     CloseRecvBudget (counted in ListenerStats.RecvBudgetEvictions): connections whose
//     applications stopped reading cannot hold the others forever.

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
	limit    int64
	held     atomic.Int64
	releases atomic.Uint64 // how many times bytes were returned (stall detection)

	mu         sync.Mutex // guards the stall state below
	stallMark  uint64     // releases when the current stall was first seen
	stallSince time.Time  // zero: no refusal seen since the last release
}

// take charges n bytes; it reports false (and charges nothing) when they do not fit:
// within the whole budget for a reservation, within half of it for new work.
func (b *recvBudget) take(n int64, reservation bool) bool {
	limit := b.limit
	if !reservation {
		limit /= 2
	}
	if b.held.Add(n) > limit {
		b.held.Add(-n)
		return false
	}
	return true
}

// give returns n bytes charged by take.
func (b *recvBudget) give(n int64) {
	b.held.Add(-n)
	b.releases.Add(1)
}

// refused records that data was refused over the budget at now; it reports true when
// nothing was returned to the budget for RecvStallTimeout since refusals began (then the
// stall clock restarts, so that evictions are at least RecvStallTimeout apart).
// Contract: any goroutine.
func (b *recvBudget) refused(now time.Time, stall time.Duration) bool {
	rel := b.releases.Load()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stallSince.IsZero() || rel != b.stallMark {
		b.stallMark, b.stallSince = rel, now
		return false
	}
	if now.Sub(b.stallSince) < stall {
		return false
	}
	b.stallSince = now
	return true
}

// messageSink is where a recvStream delivers what it parses and charges what it holds
// (the Conn, with c.mu held; tests use their own).
type messageSink interface {
	// deliverLocked takes a complete message (which becomes the sink's, with its
	// reservation: varintLen(len(m)) + len(m)).
	deliverLocked(m []byte)
	// refuseLocked reports a message above maxMessage: its first bytes and declared size
	// (with its reservation: varintLen(size) + len(prefix)).
	refuseLocked(prefix []byte, size uint64)
	// reserveRecv charges a message's reservation, against the whole budget and the
	// connection's cap; false: it does not fit, nothing is charged.
	reserveRecv(n int) bool
	// chargeRecv charges n bytes of new work (out-of-order bytes), within half the
	// budget; false: they do not fit, nothing is charged.
	chargeRecv(n int) bool
	// releaseRecv returns n bytes charged by reserveRecv or chargeRecv.
	releaseRecv(n int)
	// maxMessage is the application's message limit, in bytes.
	maxMessage() uint64
	// maxOutOfOrder is what the stream may hold out of order (fragments with their
	// overhead), in bytes.
	maxOutOfOrder() int
}

// fragment is a run of out-of-order stream bytes.
type fragment struct {
	off  uint64
	b    []byte
	kind uint8
}

// Kinds of fragment: where its bytes are and what they cost (invariants 3 and 5).
const (
	fragCharged        = iota // a copy charged as new work (in fragHeld)
	fragCovered               // a copy inside the message being read, within its reservation (in coveredHeld)
	fragInPlace               // inside the message being read, written in its buffer: b aliases it (counted in inPlace)
	fragInPlaceCharged        // the same, moved there from a fragCharged copy: its entry is still charged fragmentOverhead
)

// maxInPlace is how many fragInPlace entries a message of want bytes may have: their list
// entries (fragmentOverhead each, not charged) cost at most 1/bodyGrowth of the message.
func maxInPlace(want int) int { return max(1, want/(bodyGrowth*fragmentOverhead)) }

func (f *fragment) end() uint64 { return f.off + uint64(len(f.b)) }

// recvStream is the receiving half: it reassembles the stream, parses length-prefixed
// messages and enforces the flow-control limit it advertises.
type recvStream struct {
	frags       []fragment // out-of-order bytes, by offset, not overlapping, all above readOff
	fragHeld    int        // what the fragCharged ones are charged (bytes plus fragmentOverhead each)
	coveredHeld int        // what the fragCovered ones hold, counted the same way
	inPlace     int        // fragInPlace entries
	readOff     uint64     // bytes below are parsed
	consumed    uint64     // bytes of messages the application has taken
	maxData     uint64     // the limit advertised to the peer
	window      uint64

	hdr     [8]byte // the length prefix being read
	hdrN    int
	waiting bool // hdr holds a whole prefix whose reservation did not fit yet
	body    []byte
	want    int // the declared length of the message being filled (0: none)

	reserved int    // the reservation of the message being read (0: none)
	settle   bool   // its buffer reached its size: fragments inside it are to be moved in
	tooLarge uint64 // declared length of the refused message being read (0: none)
	skip     uint64 // its bytes still to come
	prefix   []byte // its first bytes, kept for refuseLocked
}

func (r *recvStream) init(cfg *Config) {
	r.window = uint64(cfg.RecvWindow)
	r.maxData = r.window
}

// write accepts a STREAM frame and delivers every message it completes. It reports
// false when some of the bytes were not kept (a reservation or out-of-order bytes did not
// fit): then nothing of them beyond what was already held may be assumed kept, and the
// packet must not be acknowledged. Contract: c.mu held (read loop).
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
	n, err := r.parse(data, s)
	r.readOff += uint64(n)
	if err != nil {
		return false, err
	}
	if n < len(data) {
		// A reservation did not fit: the rest was not taken. Fragments of the message
		// just completed are dropped (those in place alias the application's buffer).
		return false, r.drain(s)
	}
	err = r.drain(s)
	if r.settle {
		r.settleLocked(s)
	}
	return true, err
}

// retry parses what waits behind a reservation that did not fit; it reports whether the
// stream still waits. Contract: c.mu held.
func (r *recvStream) retry(s messageSink) (bool, error) {
	if !r.waiting {
		return false, nil
	}
	if _, err := r.parse(nil, s); err != nil || r.waiting {
		return r.waiting, err
	}
	err := r.drain(s)
	if r.settle {
		r.settleLocked(s)
	}
	return r.waiting, err
}

// drain parses the fragments that the in-order bytes have reached, returning each
// fragment's charge as its bytes are parsed (a message's bytes are covered by its
// reservation); it stops where a reservation does not fit, keeping the rest.
func (r *recvStream) drain(s messageSink) error {
	k := 0
	var err error
	for k < len(r.frags) && r.frags[k].off <= r.readOff && err == nil {
		f := &r.frags[k]
		if fe := f.end(); fe <= r.readOff {
			r.releaseFrag(s, f, len(f.b)+fragmentOverhead)
			k++
			continue
		}
		covered := int(r.readOff - f.off)
		var n int
		n, err = r.parse(f.b[covered:], s)
		r.readOff += uint64(n)
		if covered+n < len(f.b) && err == nil {
			// Waiting for a reservation: the fragment keeps its unparsed bytes.
			r.releaseFrag(s, f, covered+n)
			f.b = f.b[covered+n:]
			f.off = r.readOff
			break
		}
		r.releaseFrag(s, f, len(f.b)+fragmentOverhead)
		k++
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

// releaseFrag returns n of what fragment f holds (parsed, moved in place or dropped):
// n above len(f.b) is the whole fragment, its entry included.
func (r *recvStream) releaseFrag(s messageSink, f *fragment, n int) {
	switch f.kind {
	case fragCharged:
		r.fragHeld -= n
		s.releaseRecv(n)
	case fragCovered:
		r.coveredHeld -= n
	case fragInPlace:
		if n > len(f.b) {
			r.inPlace--
		}
	case fragInPlaceCharged:
		if n > len(f.b) {
			r.fragHeld -= fragmentOverhead
			s.releaseRecv(fragmentOverhead)
		}
	}
}

// store keeps the bytes of [off, off+len(data)) that no fragment holds yet: inside the
// message being read as fragCovered copies or in its buffer (storeCovered), beyond it as
// exact-size copies charged as new work (appended to the fragment just before them when
// contiguous). It reports false when the budget or a fragment limit refused some of them.
func (r *recvStream) store(off uint64, data []byte, s messageSink) bool {
	end := off + uint64(len(data))
	msgEnd := r.readOff // the end of the message being read (none: nothing is inside it)
	if r.want > 0 {
		msgEnd += uint64(r.want - len(r.body))
	}
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
		if pos < msgEnd {
			gapEnd = min(gapEnd, msgEnd) // a fragment lies inside the message or beyond it
		}
		b := data[pos-off : gapEnd-off]
		ok := true
		if pos < msgEnd {
			i, ok = r.storeCovered(i, pos, b, s)
		} else if prev := i - 1; prev >= 0 && r.frags[prev].kind == fragCharged && r.frags[prev].end() == pos && len(r.frags[prev].b)+len(b) <= maxFragment {
			if ok = r.chargeFrag(s, len(b)); ok {
				r.frags[prev].b = append(r.frags[prev].b, b...)
			}
		} else if ok = len(r.frags) < MaxRecvFragments && r.chargeFrag(s, len(b)+fragmentOverhead); ok {
			r.frags = slices.Insert(r.frags, i, fragment{off: pos, b: append([]byte(nil), b...)})
			i++
		}
		if !ok {
			return false
		}
		pos = gapEnd
	}
	return true
}

// chargeFrag charges n bytes of a fragCharged fragment: new work, within half the budget
// and within maxOutOfOrder.
func (r *recvStream) chargeFrag(s messageSink, n int) bool {
	if r.fragHeld+n > s.maxOutOfOrder() || !s.chargeRecv(n) {
		return false
	}
	r.fragHeld += n
	return true
}

// storeCovered keeps b, the stream bytes at pos inside the message being read, where
// frags[i] is the first fragment after them; it returns the index of the fragment that
// holds them, and false when the fragment limit refused them. They cost nothing beyond
// the message's reservation (invariant 5): a copy while the bytes received of the message
// (the buffer's and the copies', with their overhead) stay under 1/bodyGrowth of it, else
// the buffer takes its full size and they are written in it.
func (r *recvStream) storeCovered(i int, pos uint64, b []byte, s messageSink) (int, bool) {
	if cap(r.body) < r.want {
		if (len(r.body)+r.coveredHeld+len(b)+fragmentOverhead)*bodyGrowth < r.want {
			if prev := i - 1; prev >= 0 && r.frags[prev].kind == fragCovered && r.frags[prev].end() == pos && len(r.frags[prev].b)+len(b) <= maxFragment {
				r.frags[prev].b = append(r.frags[prev].b, b...)
				r.coveredHeld += len(b)
				return prev, true
			}
			if len(r.frags) >= MaxRecvFragments {
				return i, false
			}
			r.frags = slices.Insert(r.frags, i, fragment{off: pos, b: append([]byte(nil), b...), kind: fragCovered})
			r.coveredHeld += len(b) + fragmentOverhead
			return i, true
		}
		nb := make([]byte, len(r.body), r.want)
		copy(nb, r.body)
		r.body = nb
		r.settleLocked(s) // what is inside the message moves in
		i = sort.Search(len(r.frags), func(i int) bool { return r.frags[i].end() > pos })
	}
	buf, base := r.body[:r.want], r.readOff-uint64(len(r.body)) // base: the stream offset of buf[0]
	end := pos + uint64(len(b))
	copy(buf[pos-base:], b)
	if prev := i - 1; prev >= 0 && isInPlace(r.frags[prev].kind) && r.frags[prev].end() == pos {
		i-- // extends the fragment before
	} else {
		if len(r.frags) >= MaxRecvFragments || r.inPlace >= maxInPlace(r.want) {
			return i, false
		}
		r.frags = slices.Insert(r.frags, i, fragment{off: pos, kind: fragInPlace})
		r.inPlace++
	}
	if next := i + 1; next < len(r.frags) && isInPlace(r.frags[next].kind) && r.frags[next].off == end {
		end = r.frags[next].end() // and the one after: one fragment
		r.releaseFrag(s, &r.frags[next], len(r.frags[next].b)+fragmentOverhead)
		r.frags = slices.Delete(r.frags, next, next+1)
	}
	f := &r.frags[i]
	f.b = buf[f.off-base : end-base]
	return i, true
}

// settleLocked moves the fragments inside the message being read into its buffer once
// the buffer has the message's size (invariant 5), returning what they were charged.
// Contract: readOff is where the buffer's bytes end.
func (r *recvStream) settleLocked(s messageSink) {
	r.settle = false
	if r.want == 0 || cap(r.body) < r.want {
		return
	}
	buf, base := r.body[:r.want], r.readOff-uint64(len(r.body))
	msgEnd := base + uint64(r.want)
	var out []fragment
	for k := range r.frags {
		f := r.frags[k]
		if f.off >= msgEnd || isInPlace(f.kind) {
			out = r.appendFrag(s, out, f, buf, base)
			continue
		}
		hi := min(f.end(), msgEnd)
		copy(buf[f.off-base:], f.b[:hi-f.off])
		moved := fragment{off: f.off, b: buf[f.off-base : hi-base], kind: fragInPlace}
		switch {
		case hi < f.end():
			// A charged fragment across the message's end keeps its bytes beyond it, and
			// its charged entry; the part moved in is a new entry (one over maxInPlace at
			// most: only one fragment lies across the end).
			r.releaseFrag(s, &f, int(hi-f.off))
			r.inPlace++
			out = r.appendFrag(s, out, moved, buf, base)
			out = append(out, fragment{off: hi, b: append([]byte(nil), f.b[hi-f.off:]...), kind: fragCharged})
			continue
		case f.kind == fragCharged:
			r.releaseFrag(s, &f, len(f.b)) // its entry stays charged
			moved.kind = fragInPlaceCharged
		default: // fragCovered: fewer than maxInPlace of them (storeCovered)
			r.releaseFrag(s, &f, len(f.b)+fragmentOverhead)
			r.inPlace++
		}
		out = r.appendFrag(s, out, moved, buf, base)
	}
	r.frags = out
}

func isInPlace(kind uint8) bool { return kind == fragInPlace || kind == fragInPlaceCharged }

// appendFrag appends f to frags, merged with the last one when both are in place and
// contiguous (f's entry is then returned).
func (r *recvStream) appendFrag(s messageSink, frags []fragment, f fragment, buf []byte, base uint64) []fragment {
	if n := len(frags); n > 0 && isInPlace(f.kind) && isInPlace(frags[n-1].kind) && frags[n-1].end() == f.off {
		frags[n-1].b = buf[frags[n-1].off-base : f.end()-base]
		r.releaseFrag(s, &f, len(f.b)+fragmentOverhead)
		return frags
	}
	return append(frags, f)
}

// parse consumes in-order stream bytes: length prefixes, message bodies, and the bodies
// of refused messages, which it discards after their prefix. It returns how many bytes it
// consumed: fewer than len(b) when a message's reservation did not fit (r.waiting; the
// prefix is kept in r.hdr, and parse(nil) tries again).
func (r *recvStream) parse(b []byte, s messageSink) (int, error) {
	total := len(b)
	for len(b) > 0 || r.waiting {
		switch {
		case r.waiting:
			if !r.start(s) {
				return total - len(b), nil
			}
		case r.want > 0:
			n := min(len(b), r.want-len(r.body))
			if cap(r.body)-len(r.body) < n {
				r.body = growTo(r.body, n, r.want)
				r.settle = cap(r.body) == r.want && (r.coveredHeld > 0 || len(r.frags) > 0)
			}
			r.body = append(r.body, b[:n]...)
			b = b[n:]
			if len(r.body) == r.want {
				s.deliverLocked(r.body)
				r.body, r.want, r.reserved, r.settle = nil, 0, 0, false
			}
		case r.tooLarge > 0:
			if keep := cap(r.prefix) - len(r.prefix); keep > 0 {
				n := min(len(b), keep)
				r.prefix = append(r.prefix, b[:n]...)
				b = b[n:]
				r.skip -= uint64(n)
				if len(r.prefix) == cap(r.prefix) {
					s.refuseLocked(r.prefix, r.tooLarge)
					r.prefix, r.reserved = nil, 0
				}
			} else {
				n := int(min(uint64(len(b)), r.skip))
				b = b[n:]
				r.skip -= uint64(n)
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
			switch {
			case l > MaxMessageSize:
				return total - len(b), errMessageLength
			case varintLen(l) != r.hdrN:
				// Flow-control credit and the receive budget count a message as
				// varintLen(length) + length bytes; a longer prefix would make them drift.
				return total - len(b), errLengthEncoding
			}
			r.waiting = true
		}
	}
	return total, nil
}

// start reserves the message whose length prefix r.hdr holds and begins it; it reports
// false (r.waiting stays set) when the reservation does not fit.
func (r *recvStream) start(s messageSink) bool {
	l, _ := readVarint(r.hdr[:r.hdrN])
	n := r.hdrN + int(l)
	if l > s.maxMessage() {
		n = r.hdrN + int(min(OversizePrefix, l))
	}
	if !s.reserveRecv(n) {
		return false
	}
	r.waiting, r.hdrN, r.reserved = false, 0, n
	switch {
	case l > s.maxMessage():
		r.tooLarge, r.skip = l, l
		r.prefix = make([]byte, 0, min(OversizePrefix, l))
	case l == 0:
		s.deliverLocked([]byte{})
		r.reserved = 0
	default:
		r.want = int(l)
	}
	return true
}

// bodyGrowth bounds a message's buffer by the bytes that arrived (it holds at most
// bodyGrowth times them) and is the factor it grows by. The buffer is filled on the read
// loop, which bounds a connection's bulk throughput: every byte copied or allocated there
// is paid in throughput, so the buffer grows in few, large steps (doubling copied and
// allocated a message about twice over).
const bodyGrowth = 16

// growTo makes room in b for n more bytes of a message of want bytes, whose reservation
// is held (charged: the buffer grows only to keep the heap in step with what arrived).
// The buffer holds at most bodyGrowth times the bytes received: it grows by that factor
// up to want/bodyGrowth, and to want itself once the bytes received are at least
// want/bodyGrowth. So a message gets one exact allocation when it arrives whole, or when
// its first bytes are at least 1/bodyGrowth of it; a larger one is copied once at
// want/bodyGrowth bytes, and at most 2·want/(bodyGrowth-1) bytes in all (allocated: want
// plus what was copied).
func growTo(b []byte, n, want int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	got := len(b) + n
	c := want
	if got < (want+bodyGrowth-1)/bodyGrowth {
		c = max(got, min(bodyGrowth*cap(b), (want+bodyGrowth-1)/bodyGrowth))
	}
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
