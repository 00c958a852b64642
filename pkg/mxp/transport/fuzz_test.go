package transport

import (
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

func FuzzRecvStream(f *testing.F) {
	f.Add([]byte{3, 'a', 'b', 'c', 0, 1, 'x'}, uint8(2))
	f.Fuzz(func(t *testing.T, stream []byte, cut uint8) {
		cfg := Config{RecvWindow: DefaultRecvWindow}
		var r recvStream
		r.init(&cfg)
		var got [][]byte
		k := int(cut) % (len(stream) + 1)
		// Deliver the second part first (out of order), then the first.
		if err := r.write(uint64(k), stream[k:], func(m []byte) { got = append(got, m) }); err != nil {
			return
		}
		r.write(0, stream[:k], func(m []byte) { got = append(got, m) })
		var ref recvStream
		ref.init(&cfg)
		var want [][]byte
		ref.write(0, stream, func(m []byte) { want = append(want, m) })
		if len(got) != len(want) {
			t.Fatalf("out-of-order delivery gave %d messages, in order %d", len(got), len(want))
		}
	})
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
