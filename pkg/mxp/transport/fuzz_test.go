package transport

import (
	"bytes"
	"context"
	"net/netip"
	"testing"
	"time"
)

type nopHandler struct{}

func (nopHandler) onPing()                       {}
func (nopHandler) onAck(*ackFrame)               {}
func (nopHandler) onStream(uint64, []byte) error { return nil }
func (nopHandler) onMaxData(uint64)              {}
func (nopHandler) onDatagram([]byte)             {}
func (nopHandler) onClose(uint64, []byte)        {}

func FuzzParseFrames(f *testing.F) {
	b := appendAck(nil, rangeSet{{0, 3}, {5, 9}}, 10)
	b = appendStreamHeader(b, 7, 3)
	b = append(b, "abc"...)
	b = append(b, FramePing, FrameMaxData, 0x44, 0x00, FrameDatagram, 2, 'h', 'i')
	f.Add(b)
	f.Add(appendClose(nil, 1, "bye"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var a ackFrame
		parseFrames(b, nopHandler{}, &a)
	})
}

func FuzzAckRoundTrip(f *testing.F) {
	f.Add(uint64(0), uint64(5), uint64(9), uint64(20))
	f.Fuzz(func(t *testing.T, a, b, c, d uint64) {
		var r rangeSet
		for _, x := range []uint64{a % (1 << 40), b % (1 << 40), c % (1 << 40), d % (1 << 40)} {
			r.add(x, x+1+x%3)
		}
		enc := appendAck(nil, r, 0)
		var af ackFrame
		n, err := parseAck(enc[1:], &af)
		if err != nil || n != len(enc)-1 {
			t.Fatalf("%v: %v %d", r, err, n)
		}
		if af.n != len(r) || af.ranges[0].hi != r[len(r)-1].end-1 {
			t.Fatalf("ranges %v decoded as %+v", r, af.ranges[:af.n])
		}
	})
}

// testSink is a messageSink for recvStream tests: an application that takes every message
// at once (returning its bytes to the budget), with a budget of its own.
type testSink struct {
	limit  uint64
	budget int
	held   int
	got    []recvd
}

type recvd struct {
	b    []byte
	size uint64 // > 0: a refused message of this size, b its prefix
}

func (s *testSink) deliverLocked(m []byte) {
	s.got = append(s.got, recvd{b: append([]byte{}, m...)})
	s.releaseRecv(varintLen(uint64(len(m))) + len(m))
}

func (s *testSink) refuseLocked(p []byte, size uint64) {
	s.got = append(s.got, recvd{b: append([]byte{}, p...), size: size})
	s.releaseRecv(varintLen(size) + len(p))
}

func (s *testSink) chargeRecv(n int) bool {
	if s.held+n > s.budget/2 {
		return false
	}
	s.held += n
	return true
}

func (s *testSink) reserveRecv(n int) bool {
	if s.held+n > s.budget {
		return false
	}
	s.held += n
	return true
}

func (s *testSink) releaseRecv(n int) {
	s.held -= n
	if s.held < 0 {
		panic("released more than charged")
	}
}

func (s *testSink) maxMessage() uint64 { return s.limit }

func (s *testSink) maxOutOfOrder() int { return max(s.budget/8, 1<<10) }

// expectedHeld is what r must have charged: the reservation of the message being read
// (its length prefix included) and the fragCharged fragments with their overhead. It also
// checks the invariants of reassembly.go: the message being read holds at most its
// reservation (its buffer and the fragCovered copies), fragments in place alias its
// buffer, and the charged fragments are within the connection's out-of-order cap.
func expectedHeld(t *testing.T, r *recvStream, s *testSink) int {
	n := 0
	switch {
	case r.want > 0:
		n = varintLen(uint64(r.want)) + r.want
		if cap(r.body) > r.want {
			t.Fatalf("buffer of %d bytes for a message of %d", cap(r.body), r.want)
		}
	case r.tooLarge > 0 && r.prefix != nil:
		n = varintLen(r.tooLarge) + cap(r.prefix)
	}
	if n != r.reserved {
		t.Fatalf("reserved %d, the message being read needs %d", r.reserved, n)
	}
	base := r.readOff - uint64(len(r.body))
	msgEnd := base + uint64(r.want)
	f, covered, inPlace := 0, 0, 0
	for _, fr := range r.frags {
		switch fr.kind {
		case fragCharged:
			f += len(fr.b) + fragmentOverhead
		case fragCovered:
			covered += len(fr.b) + fragmentOverhead
			if r.want == 0 || fr.end() > msgEnd || cap(r.body) == r.want {
				t.Fatalf("a copy at %d..%d inside a message ending at %d, buffer %d of %d", fr.off, fr.end(), msgEnd, cap(r.body), r.want)
			}
		case fragInPlace, fragInPlaceCharged:
			if fr.kind == fragInPlace {
				inPlace++
			} else {
				f += fragmentOverhead
			}
			if r.want == 0 || fr.end() > msgEnd || cap(r.body) != r.want || &fr.b[0] != &r.body[:r.want][fr.off-base] {
				t.Fatalf("fragment in place at %d..%d, not in the buffer of the message at %d..%d", fr.off, fr.end(), base, msgEnd)
			}
		}
	}
	if covered != r.coveredHeld || cap(r.body)+covered > r.reserved && r.want > 0 {
		t.Fatalf("copies inside the message hold %d (counted %d) beside a buffer of %d; reserved %d", covered, r.coveredHeld, cap(r.body), r.reserved)
	}
	// In-place entries cost at most 1/bodyGrowth of the message (one more across its end).
	if inPlace != r.inPlace || r.want > 0 && inPlace > maxInPlace(r.want)+1 {
		t.Fatalf("%d fragments in place (counted %d) in a message of %d", inPlace, r.inPlace, r.want)
	}
	if f != r.fragHeld || f > s.maxOutOfOrder() {
		t.Fatalf("fragments hold %d, charged %d, cap %d", f, r.fragHeld, s.maxOutOfOrder())
	}
	return n + f
}

// maxReservation is the largest reservation a stream's messages need (their heldBytes).
func maxReservation(got []recvd) int {
	n := 0
	for _, m := range got {
		size := uint64(len(m.b))
		if m.size > 0 {
			size = m.size
		}
		n = max(n, varintLen(size)+len(m.b))
	}
	return n
}

// FuzzRecvStream delivers a stream in pieces, out of order, under a message limit and a
// receive budget, retrying refused pieces as a sender would, and checks that (a) what is
// delivered is what in-order delivery gives (the whole of it when the budget allows),
// (b) the bytes charged always equal what the stream holds, (c) a refused message is
// reported with its true size and first bytes.
func FuzzRecvStream(f *testing.F) {
	f.Add([]byte{3, 'a', 'b', 'c', 0, 1, 'x'}, uint8(2), uint16(0), uint16(0))
	f.Add([]byte{40, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 2, 'o', 'k'}, uint8(7), uint16(10), uint16(0))
	f.Add([]byte{0x40, 100, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, uint8(1), uint16(4), uint16(200))
	f.Fuzz(func(t *testing.T, stream []byte, cut uint8, limit, budget uint16) {
		cfg := Config{RecvWindow: DefaultRecvWindow}
		lim := uint64(MaxMessageSize)
		if limit > 0 {
			lim = uint64(limit)
		}
		// Reference: the whole stream in order, no budget.
		ref := &testSink{limit: lim, budget: 1 << 30}
		var rr recvStream
		rr.init(&cfg)
		if _, err := rr.write(0, stream, ref); err != nil {
			return
		}
		plain := &testSink{limit: MaxMessageSize, budget: 1 << 30}
		var rp recvStream
		rp.init(&cfg)
		rp.write(0, stream, plain)
		if rp.want > 0 { // a refusal is reported once its prefix arrived: the message need not be whole
			plain.got = append(plain.got, recvd{b: rp.body, size: uint64(rp.want)})
		}
		checkRefusals(t, ref.got, plain.got)

		// Pieces at a stride, sent last first, then retried in order until nothing moves.
		k := int(cut)%(len(stream)+1) + 1
		type piece struct{ off, end int }
		var ps []piece
		for off := 0; off < len(stream); off += k {
			ps = append(ps, piece{off, min(off+k, len(stream))})
		}
		s := &testSink{limit: lim, budget: 1 << 30}
		if budget > 0 {
			s.budget = int(budget)
		}
		var r recvStream
		r.init(&cfg)
		pending := make([]bool, len(ps))
		for i := len(ps) - 1; i >= 0; i-- {
			p := ps[i]
			ok, err := r.write(uint64(p.off), stream[p.off:p.end], s)
			if err != nil {
				t.Fatalf("piece %d: %v (in order it was fine)", i, err)
			}
			pending[i] = !ok
			if h := expectedHeld(t, &r, s); h != s.held {
				t.Fatalf("after piece %d: charged %d, holding %d", i, s.held, h)
			}
		}
		for moved := true; moved; {
			moved = false
			for i, p := range ps {
				if !pending[i] {
					continue
				}
				ok, err := r.write(uint64(p.off), stream[p.off:p.end], s)
				if err != nil {
					t.Fatal(err)
				}
				if ok {
					pending[i], moved = false, true
				}
				if h := expectedHeld(t, &r, s); h != s.held {
					t.Fatalf("retrying piece %d: charged %d, holding %d", i, s.held, h)
				}
			}
		}
		if len(s.got) > len(ref.got) {
			t.Fatalf("%d messages delivered, %d in order", len(s.got), len(ref.got))
		}
		for i := range s.got {
			if !bytes.Equal(s.got[i].b, ref.got[i].b) || s.got[i].size != ref.got[i].size {
				t.Fatalf("message %d: %+v, in order %+v", i, s.got[i], ref.got[i])
			}
		}
		if s.budget/2 >= maxReservation(ref.got) && len(s.got) != len(ref.got) {
			t.Fatalf("unlimited budget: %d messages delivered, %d in order", len(s.got), len(ref.got))
		}
	})
}

// FuzzRecvStreamPieces delivers arbitrary, overlapping ranges of a stream in the fuzzer's
// order under a small budget, then the whole stream in order (as retransmissions would):
// the messages must be those of in-order delivery, the charge must match what is held
// after every write, and the fragment limit must hold.
func FuzzRecvStreamPieces(f *testing.F) {
	f.Add([]byte{3, 'a', 'b', 'c', 0, 1, 'x', 2, 'y', 'z'}, []byte{5, 3, 1, 2, 8, 2, 0, 9}, uint16(300), uint16(2))
	// A message of 2,000 bytes (over 16 fragment overheads: copies beside its buffer, then
	// in place) and a short one after it, with holes.
	big := append([]byte{0x47, 0xd0}, bytes.Repeat([]byte("0123456789"), 200)...)
	big = append(big, 2, 'o', 'k')
	f.Add(big, []byte{40, 30, 90, 100, 200, 250, 250, 250, 3, 10, 160, 255, 230, 20}, uint16(6000), uint16(0))
	f.Fuzz(func(t *testing.T, stream, plan []byte, budget, limit uint16) {
		if len(stream) == 0 {
			return
		}
		cfg := Config{RecvWindow: DefaultRecvWindow}
		lim := uint64(MaxMessageSize)
		if limit > 0 {
			lim = uint64(limit)
		}
		ref := &testSink{limit: lim, budget: 1 << 30}
		var rr recvStream
		rr.init(&cfg)
		if _, err := rr.write(0, stream, ref); err != nil {
			return
		}
		s := &testSink{limit: lim, budget: int(budget) + 1}
		var r recvStream
		r.init(&cfg)
		write := func(off, end int) {
			if _, err := r.write(uint64(off), stream[off:end], s); err != nil {
				t.Fatalf("[%d,%d): %v (in order it was fine)", off, end, err)
			}
			if h := expectedHeld(t, &r, s); h != s.held {
				t.Fatalf("after [%d,%d): charged %d, holding %d", off, end, s.held, h)
			}
			if len(r.frags) > MaxRecvFragments {
				t.Fatalf("%d fragments", len(r.frags))
			}
			for i := 1; i < len(r.frags); i++ {
				if r.frags[i].off < r.frags[i-1].end() {
					t.Fatalf("fragments overlap: %d..%d then %d", r.frags[i-1].off, r.frags[i-1].end(), r.frags[i].off)
				}
			}
		}
		for i := 0; i+1 < len(plan); i += 2 {
			off := int(plan[i]) % len(stream)
			write(off, min(len(stream), off+1+int(plan[i+1])))
		}
		// The sender retransmits what was not acknowledged: here, everything, in order,
		// in pieces of at most 16 bytes so that the small budget lets it through.
		for off := 0; off < len(stream); off += 16 {
			write(off, min(len(stream), off+16))
		}
		if s.budget/2 >= maxReservation(ref.got) {
			// Fragments hold at most half the budget, so every reservation fits: a started
			// message always completes, and the in-order retransmission delivers them all.
			if len(s.got) != len(ref.got) {
				t.Fatalf("%d messages, in order %d", len(s.got), len(ref.got))
			}
		}
		if len(s.got) > len(ref.got) {
			t.Fatalf("%d messages, in order %d", len(s.got), len(ref.got))
		}
		for i := range s.got {
			if !bytes.Equal(s.got[i].b, ref.got[i].b) || s.got[i].size != ref.got[i].size {
				t.Fatalf("message %d: %+v, in order %+v", i, s.got[i], ref.got[i])
			}
		}
	})
}

// checkRefusals matches the messages delivered under a limit with those delivered
// without: each refusal stands for one whole message of that size, starting with the
// reported prefix.
func checkRefusals(t *testing.T, limited, plain []recvd) {
	t.Helper()
	if len(limited) > len(plain) {
		t.Fatalf("%d messages under the limit, %d without", len(limited), len(plain))
	}
	for i, m := range limited {
		p := plain[i].b
		if plain[i].size > 0 { // the partial message at the end of the stream
			if m.size != plain[i].size || !bytes.Equal(m.b, p[:len(m.b)]) {
				t.Fatalf("refusal %d: size %d prefix %x; partial message of %d bytes: %x", i, m.size, m.b, plain[i].size, p)
			}
			continue
		}
		if m.size == 0 {
			if !bytes.Equal(m.b, p) {
				t.Fatalf("message %d differs under the limit", i)
			}
			continue
		}
		if m.size != uint64(len(p)) || len(m.b) != min(OversizePrefix, len(p)) || !bytes.Equal(m.b, p[:len(m.b)]) {
			t.Fatalf("refusal %d: size %d prefix %x; message of %d bytes", i, m.size, m.b, len(p))
		}
	}
}

func FuzzHandlePacket(f *testing.F) {
	client := newStaticIdentity(mustKey(f))
	f.Add([]byte{PacketData, 0, 0, 0, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	f.Add(make([]byte, ResponseSize))
	f.Add(make([]byte, CookieReplySize))
	// One listener for every input: state left by earlier inputs is part of what is fuzzed.
	l, err := Listen(context.Background(), "127.0.0.1:0", Config{PrivateKey: mustKey(f)})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { l.Close() })
	server := newPeerKeys(l.PublicKey())
	src := netip.MustParseAddrPort("127.0.0.1:9")
	// A second listener, always under load and with small caps, gets the same packets and
	// initiations carrying a valid cookie from a source named by the input: the admission
	// path (token buckets, caps) is fuzzed with the rest.
	busy, err := Listen(context.Background(), "127.0.0.1:0", Config{PrivateKey: mustKey(f), UnderLoadHandshakes: -1,
		MaxConnections: 8, MaxConnectionsPerSource: 4, MaxPendingHandshakes: 6, MaxPendingPerSource: 2,
		HandshakeBurstPerSource: 2, HandshakeBurstPerKey: 3})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { busy.Close() })
	busyServer := newPeerKeys(busy.PublicKey())
	var connID uint64
	f.Fuzz(func(t *testing.T, b []byte) {
		now := time.Now()
		st, _ := createInitiation(client, &server, 1, nextTimestamp(), 1, nil)
		l.ep.handlePacket(st.packet[:], src, now)
		l.ep.handlePacket(b, src, now)
		if len(b) == InitiationSize {
			m := append([]byte(nil), b...)
			m[0], m[1], m[2], m[3] = PacketInitiation, 0, 0, 0
			l.ep.handlePacket(m, src, now)
		}
		var a [4]byte
		copy(a[:], b)
		bsrc := netip.AddrPortFrom(netip.AddrFrom4(a), uint16(len(b)))
		ck := busy.ep.cookies.cookieFor(bsrc, now)
		connID++
		bst, _ := createInitiation(client, &busyServer, uint32(connID), nextTimestamp(), connID%4, &ck)
		busy.ep.handlePacket(bst.packet[:], bsrc, now)
		busy.ep.handlePacket(b, bsrc, now)
		checkAdmission(t, busy)
	})
}

func FuzzConsumeInitiation(f *testing.F) {
	srv := newStaticIdentity(mustKey(f))
	cli := newStaticIdentity(mustKey(f))
	pk := newPeerKeys(srv.public)
	st, _ := createInitiation(cli, &pk, 7, nextTimestamp(), 9, nil)
	f.Add(st.packet[:])
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := consumeInitiation(srv, b)
		if err == nil && in.static != cli.public {
			t.Fatal("authenticated an initiation under the wrong key")
		}
	})
}

func FuzzConsumeResponse(f *testing.F) {
	srv := newStaticIdentity(mustKey(f))
	cli := newStaticIdentity(mustKey(f))
	pk := newPeerKeys(srv.public)
	st, _ := createInitiation(cli, &pk, 7, nextTimestamp(), 9, nil)
	in, _ := consumeInitiation(srv, st.packet[:])
	cpk := newPeerKeys(cli.public)
	var psk [KeySize]byte
	resp, _, _ := createResponse(in, &psk, 11, &cpk, nil)
	f.Add(resp[:])
	f.Fuzz(func(t *testing.T, b []byte) {
		consumeResponse(cli, &pk, &psk, st, b)
		parseResponseHeader(b)
	})
}

func FuzzCookieReply(f *testing.F) {
	srv := newStaticIdentity(mustKey(f))
	cli := newStaticIdentity(mustKey(f))
	pk := newPeerKeys(srv.public)
	st, _ := createInitiation(cli, &pk, 7, nextTimestamp(), 9, nil)
	var reply [CookieReplySize]byte
	newCookieChecker(srv).writeCookieReply(&reply, st.packet[:], 7, netip.MustParseAddrPort("127.0.0.1:1"), time.Now())
	f.Add(reply[:])
	f.Fuzz(func(t *testing.T, b []byte) {
		openCookieReply(&pk, b, st.packet[:])
	})
}

func FuzzReplayWindow(f *testing.F) {
	f.Add([]byte{1, 2, 3, 200, 1, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		var w replayWindow
		seen := map[uint64]bool{}
		for i := 0; i+1 < len(b); i += 2 {
			c := uint64(b[i])<<8 | uint64(b[i+1])
			ok := w.accept(c)
			if ok && seen[c] {
				t.Fatalf("counter %d accepted twice", c)
			}
			if ok {
				seen[c] = true
			}
		}
	})
}

// FuzzAdmission drives the handshake admission path (issue 15 point 6) with initiations
// from fuzzed sources, client keys, connection ids, cookie use and clock steps, through a
// listener that is always under load and has small caps, and checks after each input
// that every cap and the bucket tables hold and that the per-source counts add up.
func FuzzAdmission(f *testing.F) {
	f.Add([]byte{127, 0, 0, 1, 0, 1, 1, 0}, uint8(0), true, uint16(10))
	f.Add([]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, uint8(1), false, uint16(1000))
	l, err := Listen(context.Background(), "127.0.0.1:0", Config{PrivateKey: mustKey(f), UnderLoadHandshakes: -1,
		MaxConnections: 16, MaxConnectionsPerSource: 6, MaxPendingHandshakes: 12, MaxPendingPerSource: 4,
		HandshakeRatePerSource: 5, HandshakeBurstPerSource: 3, HandshakeRatePerKey: 5, HandshakeBurstPerKey: 4})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { l.Close() })
	clients := []*staticIdentity{newStaticIdentity(mustKey(f)), newStaticIdentity(mustKey(f)), newStaticIdentity(mustKey(f))}
	server := newPeerKeys(l.PublicKey())
	var id uint64
	now := time.Now()
	f.Fuzz(func(t *testing.T, addr []byte, key uint8, cookie bool, stepMs uint16) {
		var ip netip.Addr
		switch {
		case len(addr) >= 16:
			ip = netip.AddrFrom16([16]byte(addr[:16]))
		case len(addr) >= 4:
			ip = netip.AddrFrom4([4]byte(addr[:4]))
		default:
			return
		}
		src := netip.AddrPortFrom(ip, 4000+uint16(key))
		now = now.Add(time.Duration(stepMs) * time.Millisecond)
		var ck *[MACSize]byte
		if cookie {
			c := l.ep.cookies.cookieFor(src, now)
			ck = &c
		}
		id++
		st, err := createInitiation(clients[int(key)%len(clients)], &server, uint32(id), nextTimestamp(), id%8, ck)
		if err != nil {
			t.Fatal(err)
		}
		l.ep.handlePacket(st.packet[:], src, now)
		// The handshake worker completes what was queued meanwhile: the caps are
		// invariants, so they must hold at any moment.
		checkAdmission(t, l)
	})
}

// checkAdmission fails t unless l's caps, per-source counts and bucket tables hold.
func checkAdmission(t *testing.T, l *Listener) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	cfg := l.cfg
	if len(l.conns) > cfg.MaxConnections || l.pending > cfg.MaxPendingHandshakes || l.pending < 0 {
		t.Fatalf("%d connections, %d pending: over the caps", len(l.conns), l.pending)
	}
	total, pending := 0, 0
	for s, sc := range l.sources {
		if sc.conns > cfg.MaxConnectionsPerSource || sc.pending > cfg.MaxPendingPerSource || sc.conns <= 0 || sc.pending < 0 {
			t.Fatalf("source %v: %+v over its caps", s, *sc)
		}
		total += sc.conns
		pending += sc.pending
	}
	if total != len(l.conns) || pending != l.pending {
		t.Fatalf("sources count %d connections (%d pending), the listener %d (%d)", total, pending, len(l.conns), l.pending)
	}
	if l.perSource.len() > MaxRateLimitEntries || l.perKey.len() > MaxRateLimitEntries {
		t.Fatal("bucket tables over their bound")
	}
}
