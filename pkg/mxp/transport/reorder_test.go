package transport

import (
	"testing"
	"time"
)

// TestReorderRingLifecycle checks that the spurious-loss ring exists only around losses:
// none before the first, allocated by it, kept while packets are in flight or a loss is
// recent, and freed once the connection is quiet, with the adapted thresholds kept.
func TestReorderRingLifecycle(t *testing.T) {
	var r reorderState
	r.init()
	if r.ring != nil {
		t.Fatal("a connection without losses has a ring")
	}
	t0 := time.Unix(1000, 0)
	r.remember(&sentPacket{pn: 7}, t0)
	if r.ring == nil || r.live != 1 {
		t.Fatalf("after a loss: ring %v, live %d", r.ring != nil, r.live)
	}
	r.packets = 9 // as if reordering had raised it
	r.forget(t0.Add(reorderForget-time.Millisecond), 0)
	if r.ring == nil {
		t.Fatal("ring freed before reorderForget passed")
	}
	r.forget(t0.Add(2*reorderForget), 1200)
	if r.ring == nil {
		t.Fatal("ring freed with packets in flight")
	}
	r.forget(t0.Add(reorderForget), 0)
	if r.ring != nil || r.live != 0 || r.next != 0 {
		t.Fatalf("quiet connection kept its ring (live %d, next %d)", r.live, r.next)
	}
	if r.packets != 9 {
		t.Errorf("packet threshold %d after forget, want the adapted 9", r.packets)
	}
	r.remember(&sentPacket{pn: 8}, t0.Add(3*reorderForget))
	if r.ring == nil || r.live != 1 {
		t.Fatal("a loss after forget did not allocate a new ring")
	}
}
