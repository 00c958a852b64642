package mxp

import (
	"encoding/binary"
	"testing"
)

func TestTraceMapping(t *testing.T) {
	for _, id := range []uint64{1, 0xdeadbeefcafebabe, ^uint64(0)} {
		w := W3CTraceID(id)
		if w == ([16]byte{}) || TraceIDOfW3C(w) != id {
			t.Fatalf("%x → %x → %x", id, w, TraceIDOfW3C(w))
		}
		if binary.BigEndian.Uint64(w[:8]) != 0 {
			t.Fatalf("high half of %x is not zero", w)
		}
	}
	if W3CTraceID(0) != ([16]byte{}) {
		t.Fatal("MXP trace id 0 must map to the invalid trace id")
	}
}

// A message id chosen with MessageIDForSpan gives back the sender's span id; a span id
// that cannot be carried (zero, or equal to the trace id) gives no id.
func FuzzMessageSpanID(f *testing.F) {
	f.Add(uint64(0x0123456789abcdef), uint64(0xfedcba9876543210))
	f.Add(uint64(7), uint64(7))
	f.Add(uint64(0), uint64(1))
	f.Add(uint64(5), uint64(0))
	f.Fuzz(func(t *testing.T, traceID, span uint64) {
		var s [8]byte
		binary.BigEndian.PutUint64(s[:], span)
		id := MessageIDForSpan(traceID, s)
		switch {
		case span == 0:
			if id != 0 {
				t.Fatalf("zero span id gave message id %x", id)
			}
		case span == traceID:
			if id != 0 {
				t.Fatalf("span id equal to the trace id gave message id %x", id)
			}
		default:
			if id == 0 || MessageSpanID(traceID, id) != s {
				t.Fatalf("trace %x span %x: id %x stands for span %x", traceID, span, id, MessageSpanID(traceID, id))
			}
		}
		if got := MessageSpanID(traceID, span); got == ([8]byte{}) {
			t.Fatalf("MessageSpanID(%x, %x) is zero", traceID, span)
		}
	})
}
