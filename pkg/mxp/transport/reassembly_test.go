package transport

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// bufferGrowth writes a message of size bytes to a fresh recvStream in order, in pieces
// of piece bytes (its length prefix in the first), and returns how many buffers it
// allocated for the message and the bytes they held and copied. It checks the bound of
// reassembly.go's invariant 1 after every piece: the buffer holds at most bodyGrowth
// times the bytes received and never more than the message.
func bufferGrowth(t *testing.T, size, piece int) (allocs, allocated, copied int) {
	t.Helper()
	msg := make([]byte, size)
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	stream := append(appendVarint(nil, uint64(size)), msg...)
	cfg := Config{RecvWindow: DefaultRecvWindow}
	var r recvStream
	r.init(&cfg)
	s := &keepSink{testSink: testSink{limit: MaxMessageSize, budget: 1 << 30}}
	for off := 0; off < len(stream); off += piece {
		end := min(off+piece, len(stream))
		before := r.body
		if ok, err := r.write(uint64(off), stream[off:end], s); !ok || err != nil {
			t.Fatalf("piece at %d: kept %v, %v", off, ok, err)
		}
		if s.last != nil { // delivered: the buffer went to the application
			if end != len(stream) || !bytes.Equal(s.last, msg) || cap(s.last) != size {
				t.Fatalf("message of %d bytes delivered at %d of %d stream bytes, intact %v, in a buffer of %d",
					size, end, len(stream), bytes.Equal(s.last, msg), cap(s.last))
			}
			if cap(s.last) != cap(before) {
				allocs++
				allocated += cap(s.last)
				copied += len(before)
			}
			return allocs, allocated, copied
		}
		if cap(r.body) != cap(before) {
			allocs++
			allocated += cap(r.body)
			copied += len(before)
		}
		if cap(r.body) > r.want || cap(r.body) > bodyGrowth*len(r.body) {
			t.Fatalf("after %d of %d bytes the buffer holds %d", len(r.body), r.want, cap(r.body))
		}
	}
	t.Fatalf("message of %d bytes never delivered", size)
	return
}

// TestMessageBufferGrowth: a large message arriving in packets is copied once at
// 1/bodyGrowth of its size and allocated about once (BenchmarkBulk64MiB's receiver, whose
// read loop bounds bulk throughput); doubling copied it about once more in all and
// allocated it twice (16 MiB in 1150-byte pieces: 18.9 MiB copied, 35.7 MiB allocated). A message arriving whole, or whose first piece is at least
// 1/bodyGrowth of it, gets one exact allocation.
func TestMessageBufferGrowth(t *testing.T) {
	const big = 16 << 20
	allocs, allocated, copied := bufferGrowth(t, big, 1150)
	t.Logf("16 MiB in 1150-byte pieces: %d buffers, %d bytes allocated, %d copied", allocs, allocated, copied)
	// 2·want/(bodyGrowth-1) at most (reassembly.go's growTo): under a seventh.
	if most := big / 7; copied > most || allocated > big+most {
		t.Fatalf("16 MiB message: %d bytes copied and %d allocated, want at most %d and %d",
			copied, allocated, most, big+most)
	}
	for _, tc := range []struct{ size, piece int }{
		{big, big + 4},        // whole
		{1 << 20, 4 + 64<<10}, // a first piece of 1/16 (after a 4-byte length prefix)
		{3000, 1150},          // a small message in three packets
	} {
		allocs, allocated, copied := bufferGrowth(t, tc.size, tc.piece)
		if allocs != 1 || allocated != tc.size || copied != 0 {
			t.Fatalf("%d bytes in pieces of %d: %d buffers, %d bytes allocated, %d copied; want one exact buffer",
				tc.size, tc.piece, allocs, allocated, copied)
		}
	}
}

// keepSink is a testSink that keeps the buffer of the last message delivered, as the
// application gets it.
type keepSink struct {
	testSink
	last []byte
}

func (s *keepSink) deliverLocked(m []byte) {
	s.last = m
	s.releaseRecv(varintLen(uint64(len(m))) + len(m))
}

// holdSink is a testSink whose application does not take what is delivered: messages
// stay charged, as on a Conn until Receive takes them.
type holdSink struct {
	testSink
}

func (s *holdSink) deliverLocked(m []byte) {
	s.got = append(s.got, recvd{b: m})
}

// TestLossRepairWithinReservation: a connection's cap holds two of the largest messages,
// one received and not yet taken by the application and one being read. A loss in the
// second must not get its sender refused: the bytes after the hole are inside the
// message's reservation (invariant 5). The old receiver charged them again, over the
// cap, so it refused (did not acknowledge) everything after a hole until the application
// took the first message (a congestion episode and retransmissions on a clean bulk path,
// BenchmarkBulk64MiB). Both where the hole is early in the message (copies beside a
// small buffer) and late (written in place).
func TestLossRepairWithinReservation(t *testing.T) {
	const size, piece = 1 << 20, 1150
	for _, hole := range []int{10 * piece, 100 * piece, size - 4*piece} {
		msgs := [2][]byte{make([]byte, size), make([]byte, size)}
		var stream []byte
		for k, m := range msgs {
			for i := range m {
				m[i] = byte(i*3 + k)
			}
			stream = append(appendVarint(stream, size), m...)
		}
		reservation := varintLen(size) + size
		s := &holdSink{testSink{limit: size, budget: 2 * reservation}}
		cfg := Config{RecvWindow: DefaultRecvWindow}
		var r recvStream
		r.init(&cfg)
		write := func(off, end int) {
			t.Helper()
			ok, err := r.write(uint64(off), stream[off:end], s)
			if err != nil || !ok {
				t.Fatalf("hole at %d: [%d,%d) kept %v, %v; %d bytes held of %d", hole, off, end, ok, err, s.held, s.budget)
			}
			if h := expectedHeld(t, &r, &s.testSink); h+reservation*len(s.got) != s.held {
				t.Fatalf("hole at %d: after [%d,%d): charged %d, holding %d", hole, off, end, s.held, h+reservation*len(s.got))
			}
		}
		lost := (reservation + hole) / piece * piece // a piece of the second message
		for off := 0; off < len(stream); off += piece {
			if off != lost {
				write(off, min(off+piece, len(stream)))
			}
		}
		if len(s.got) != 1 || s.held != 2*reservation {
			t.Fatalf("hole at %d: %d messages, %d bytes held before the repair (%d)", hole, len(s.got), s.held, 2*reservation)
		}
		write(lost, lost+piece) // the retransmission
		if len(s.got) != 2 || !bytes.Equal(s.got[0].b, msgs[0]) || !bytes.Equal(s.got[1].b, msgs[1]) || s.held != 2*reservation {
			t.Fatalf("hole at %d: %d messages, intact %v, %d bytes held", hole, len(s.got), len(s.got) == 2 && bytes.Equal(s.got[1].b, msgs[1]), s.held)
		}
	}
}

// TestFragmentsMoveInPlace: fragments inside a message move into its buffer when it takes
// the message's size, a charged one across the message's end keeps its bytes beyond it
// (charged), and the messages come out intact, the charge matching what is held.
func TestFragmentsMoveInPlace(t *testing.T) {
	msg := bytes.Repeat([]byte("0123456789"), 1600)
	stream := append(appendVarint(nil, uint64(len(msg))), msg...) // 2 + 16000 bytes
	stream = append(stream, 2, 'o', 'k')
	s := &testSink{limit: MaxMessageSize, budget: 1 << 20}
	cfg := Config{RecvWindow: DefaultRecvWindow}
	var r recvStream
	r.init(&cfg)
	write := func(off, end int) {
		t.Helper()
		if ok, err := r.write(uint64(off), stream[off:end], s); !ok || err != nil {
			t.Fatalf("[%d,%d): kept %v, %v", off, end, ok, err)
		}
		if h := expectedHeld(t, &r, s); h != s.held {
			t.Fatalf("after [%d,%d): charged %d, holding %d", off, end, s.held, h)
		}
	}
	write(15990, 16004) // before the message started: charged, across its end (16002)
	write(0, 40)        // the message starts: 38 bytes in a buffer of 38
	write(60, 70)       // a copy beside it: (38+10+48)*16 < 16000
	if r.coveredHeld == 0 || cap(r.body) == r.want {
		t.Fatalf("copy expected: covered %d, buffer %d of %d", r.coveredHeld, cap(r.body), r.want)
	}
	write(100, 1200) // (38+58+1100+48)*16 >= 16000: the buffer takes its size, all moves in
	if r.coveredHeld != 0 || cap(r.body) != r.want || len(r.frags) != 4 {
		t.Fatalf("after the move: covered %d, buffer %d of %d, fragments %+v", r.coveredHeld, cap(r.body), r.want, r.frags)
	}
	if k := r.frags[3]; k.kind != fragCharged || k.off != 16002 || len(k.b) != 2 || r.frags[2].kind != fragInPlace || r.frags[2].end() != 16002 {
		t.Fatalf("the fragment across the end: %+v then %+v", r.frags[2], k)
	}
	write(1200, 1300)
	write(70, 100) // joins [60,70) and [100,1300) in place: one fragment
	if len(r.frags) != 3 || r.frags[0].off != 60 || r.frags[0].end() != 1300 || r.inPlace != 2 {
		t.Fatalf("fragments %+v, %d in place", r.frags, r.inPlace)
	}
	for off := 40; off < len(stream); off += 500 {
		write(off, min(off+500, len(stream)))
	}
	if len(s.got) != 2 || !bytes.Equal(s.got[0].b, msg) || string(s.got[1].b) != "ok" || s.held != 0 || len(r.frags) != 0 || r.inPlace != 0 {
		t.Fatalf("%d messages, first intact %v, %d bytes held, fragments %+v", len(s.got), len(s.got) > 0 && bytes.Equal(s.got[0].b, msg), s.held, r.frags)
	}
}

// TestInPlaceEntriesBounded: bytes written in a message's buffer cost a list entry each
// run (not charged): a peer scattering single bytes over a started message gets at most
// maxInPlace runs, 1/bodyGrowth of the message in entries, and the rest is refused
// (unacknowledged) until the holes fill.
func TestInPlaceEntriesBounded(t *testing.T) {
	const size = 16000
	stream := append(appendVarint(nil, size), bytes.Repeat([]byte{'x'}, size)...)
	s := &testSink{limit: MaxMessageSize, budget: 1 << 20}
	cfg := Config{RecvWindow: DefaultRecvWindow}
	var r recvStream
	r.init(&cfg)
	r.write(0, stream[:40], s)
	r.write(100, stream[100:1200], s) // 1/16 of the message arrived: its buffer has its size
	if cap(r.body) != size {
		t.Fatalf("buffer of %d", cap(r.body))
	}
	kept := 0
	for off := 2000; off < size; off += 2 {
		ok, err := r.write(uint64(off), stream[off:off+1], s)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			kept++
		}
		if h := expectedHeld(t, &r, s); h != s.held {
			t.Fatalf("charged %d, holding %d", s.held, h)
		}
	}
	if kept == 0 || kept+1 > maxInPlace(size) { // [100,1200) is one of them
		t.Fatalf("%d single bytes kept in place, at most %d runs", kept, maxInPlace(size))
	}
	for off := 40; off < len(stream); off += 1000 {
		r.write(uint64(off), stream[off:min(off+1000, len(stream))], s)
	}
	if len(s.got) != 1 || s.held != 0 || r.inPlace != 0 {
		t.Fatalf("%d messages, %d bytes held, %d runs in place", len(s.got), s.held, r.inPlace)
	}
}

// TestLossRepairNotRefused is TestLossRepairWithinReservation on a connection: with a
// message received and not yet taken, and the next one started, the bytes after a hole in
// it are kept (acknowledged), not refused over the connection's cap of two largest
// messages; once the hole is filled both messages arrive. The old receiver refused them:
// RecvBudgetDrops, and (no retransmission here) the second message never completed.
func TestLossRepairNotRefused(t *testing.T) {
	const size = 4 << 10
	_, c, s := pair(t, Config{MaxMessageSize: size, RecvBudget: 2 * (size + 8)}, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	msgs := [2][]byte{bytes.Repeat([]byte{'a'}, size), bytes.Repeat([]byte("0123456789abcdef"), size/16)}
	var stream []byte
	for _, m := range msgs {
		stream = append(appendVarint(stream, size), m...)
	}
	send := func(off, end int) {
		sendFramesForTest(c, append(appendStreamHeader(nil, uint64(off), end-off), stream[off:end]...))
	}
	second := varintLen(size) + size
	hole := second + 1000
	for off := 0; off < hole; off += 1000 {
		send(off, min(off+1000, hole)) // the first message, whole, and the second's start
	}
	send(hole+1000, hole+2000) // after the hole: inside the second message
	send(hole, hole+1000)      // the hole, repaired
	send(hole+2000, len(stream))
	for i, want := range msgs {
		m, err := s.Receive(ctx)
		if err != nil || !bytes.Equal(m, want) {
			t.Fatalf("message %d: %d bytes, intact %v, %v; receiver %+v", i, len(m), bytes.Equal(m, want), err, s.Stats())
		}
	}
	if st := s.Stats(); st.RecvBudgetDrops != 0 {
		t.Fatalf("%d packets refused over the receive budget on a clean transfer within it", st.RecvBudgetDrops)
	}
}

// countSink is a testSink that counts what the read loop asks of it and allocates
// nothing itself: the application takes each message at once.
type countSink struct {
	testSink
	delivered, reservations int
}

func (s *countSink) deliverLocked(m []byte) {
	s.delivered++
	s.releaseRecv(varintLen(uint64(len(m))) + len(m))
}

func (s *countSink) reserveRecv(n int) bool {
	s.reservations++
	return s.testSink.reserveRecv(n)
}

// TestSmallMessagesCostOneAllocation guards the receive path of BenchmarkOneWay256 (issue
// 15: no regression from the receive budget): a packet of whole small messages, in order,
// costs per message one reservation (its length prefix and body) and one allocation (the
// buffer the application gets, exactly its size), and nothing per packet: no fragment,
// no copy kept, no buffer grown twice.
func TestSmallMessagesCostOneAllocation(t *testing.T) {
	const size, perPacket = 256, 4
	msg := make([]byte, size)
	var packet []byte
	for range perPacket {
		packet = appendVarint(packet, size)
		packet = append(packet, msg...)
	}
	cfg := Config{RecvWindow: DefaultRecvWindow}
	var r recvStream
	r.init(&cfg)
	s := &countSink{testSink: testSink{limit: MaxMessageSize, budget: 1 << 20}}
	packets := 0
	allocs := testing.AllocsPerRun(1000, func() {
		if ok, err := r.write(r.readOff, packet, s); !ok || err != nil {
			t.Fatalf("packet %d: kept %v, %v", packets, ok, err)
		}
		r.consume(r.readOff)
		packets++
	})
	if allocs != perPacket {
		t.Errorf("%v allocations per packet of %d messages, want %d (one buffer each)", allocs, perPacket, perPacket)
	}
	if want := packets * perPacket; s.delivered != want || s.reservations != want {
		t.Errorf("%d packets: %d messages delivered, %d reservations; want %d of each",
			packets, s.delivered, s.reservations, want)
	}
	if s.held != 0 || r.reserved != 0 || len(r.frags) != 0 || r.body != nil {
		t.Errorf("after whole messages: %d bytes held, %d reserved, %d fragments, buffer %v",
			s.held, r.reserved, len(r.frags), r.body != nil)
	}
}
