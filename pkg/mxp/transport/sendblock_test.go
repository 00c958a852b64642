package transport

import (
	"bytes"
	"testing"
)

// TestSendStreamBlocks checks how small messages are buffered: the first block is small,
// blocks double while data is outstanding, and once everything is acknowledged the block
// is reused from its start (no allocation on request/response traffic), with the bytes
// read back for sending always the message's own.
func TestSendStreamBlocks(t *testing.T) {
	var s sendStream
	s.init(&Config{SendBuffer: 1 << 20})
	s.push(bytes.Repeat([]byte{1}, 100))
	if cap(s.block) != firstSendBlock {
		t.Fatalf("first block %d bytes, want %d", cap(s.block), firstSendBlock)
	}
	first := &s.block[:1][0]
	s.onAcked(span{start: 0, end: s.writeOff})
	if !s.allAcked() || len(s.block) != 0 {
		t.Fatalf("after the ack: allAcked %v, block length %d", s.allAcked(), len(s.block))
	}
	s.push([]byte("next"))
	if &s.block[:1][0] != first {
		t.Error("the block was not reused once everything was acknowledged")
	}
	got := make([]byte, 5)
	s.read(s.chunks[s.head].off, got)
	if want := append([]byte{4}, "next"...); !bytes.Equal(got, want) {
		t.Errorf("read back %q, want %q", got, want)
	}

	// With data outstanding, blocks are never reused and grow to sendBlock.
	caps := map[int]bool{}
	for i := 0; i < 200; i++ {
		s.push(bytes.Repeat([]byte{byte(i)}, 1000))
		caps[cap(s.block)] = true
	}
	for size := firstSendBlock; size <= sendBlock; size *= 2 {
		if !caps[size] {
			t.Errorf("no block of %d bytes while growing (saw %v)", size, caps)
		}
	}
	// Every queued message still reads back intact.
	for _, ch := range s.chunks[s.head:] {
		buf := make([]byte, len(ch.b))
		s.read(ch.off, buf)
		if !bytes.Equal(buf, ch.b) {
			t.Fatalf("message at %d reads back different bytes", ch.off)
		}
	}
	last := s.chunks[len(s.chunks)-1]
	if last.b[len(last.b)-1] != 199 {
		t.Errorf("last message ends with %d, want 199", last.b[len(last.b)-1])
	}
}
