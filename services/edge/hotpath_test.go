package edge

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// traceparent is built by hand on the hot path; it must equal the fmt form of the W3C
// header it replaced.
func TestTraceparentMatchesW3CForm(t *testing.T) {
	for _, tc := range []struct {
		name           string
		traceID, msgID uint64
	}{
		{"small", 1, 2},
		{"message id equal to the trace id", 0xabc, 0xabc},
		{"all ones", math.MaxUint64, 0},
		{"mixed", 0x0123456789abcdef, 0xfedcba9876543210},
	} {
		t.Run(tc.name, func(t *testing.T) {
			span := tc.msgID ^ tc.traceID
			if span == 0 {
				span = 1
			}
			want := fmt.Sprintf("00-%016x%016x-%016x-01", uint64(0), tc.traceID, span)
			if got := traceparent(tc.traceID, tc.msgID); got != want {
				t.Fatalf("traceparent(%#x, %#x) = %q, want %q", tc.traceID, tc.msgID, got, want)
			}
		})
	}
}

func BenchmarkTraceparent(b *testing.B) {
	b.ReportAllocs()
	for i := range b.N {
		_ = traceparent(uint64(i)+1, uint64(i)*7)
	}
}

// discardPeer is a Peer whose Send drops the frame (for benchmarks of the edge's own
// work, without the network).
type discardPeer struct{}

func (discardPeer) ID() string                         { return "compat:127.0.0.1:1" }
func (discardPeer) Identity() string                   { return "" }
func (discardPeer) RemoteAddr() netip.AddrPort         { return netip.AddrPort{} }
func (discardPeer) MaxFrame() int                      { return CompatMaxFrame }
func (discardPeer) Send(context.Context, []byte) error { return nil }
func (discardPeer) Close() error                       { return nil }

// BenchmarkCallBookkeeping is the edge's per-Call work that is neither I/O nor the bus:
// the bus headers of the Call, and the frames counted on its way in and its Response's way
// out.
func BenchmarkCallBookkeeping(b *testing.B) {
	te := startEdge(b, testBus(b), nil)
	s := newSession(te.Edge, discardPeer{})
	f := &mxp.Frame{Type: mxp.TypeCall, MessageID: 42, TraceID: 0x0123456789abcdef}
	deadline := time.Now().Add(time.Minute)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		h := s.headers(f, deadline, false) // a Call to an agent, the hot path
		if len(h) == 0 {
			b.Fatal("no headers")
		}
		s.count(mxp.TypeCall, dirIn, outcomeOK)
		s.count(mxp.TypeResponse, dirOut, outcomeOK)
	}
}
