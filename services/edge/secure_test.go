package edge

import (
	"errors"
	"testing"
	"time"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// TestSecureTransportEndToEnd: agents on the secure transport of two edges call each other;
// a plaintext agent on a third edge calls them too; closing B's connection deregisters it
// at once (the secure transport reports the close).
func TestSecureTransportEndToEnd(t *testing.T) {
	bs := testBus(t)
	reg := startFakeRegistry(t, bs)
	e1, k1 := startSecureEdge(t, bs)
	e2, k2 := startSecureEdge(t, bs)
	a := dialSecure(t, e1.addr, k1)
	b := dialSecure(t, e2.addr, k2)
	registerAgent(t, a, "alice")
	bID := registerAgent(t, b, "bob", "echo")
	serveEcho(b, nil)

	got, err := a.Call(ctxT(t), bID, []byte("over noise"), 5*time.Second)
	if err != nil || string(got) != "over noise" {
		t.Fatalf("secure call = %q, %v", got, err)
	}
	e3 := startEdge(t, bs, nil)
	c := dial(t, e3.addr)
	if got, err := c.Call(ctxT(t), bID, []byte("from plaintext"), 5*time.Second); err != nil || string(got) != "from plaintext" {
		t.Fatalf("plaintext → secure call = %q, %v", got, err)
	}
	if n := framesMetric(e2.Edge, "Call", "out", "ok"); n != 2 {
		t.Fatalf("edge 2 delivered %v calls, want 2", n)
	}
	b.Close()
	waitFor(t, "B deregistered after its secure connection closed", func() bool { return !reg.has(bID) })
	if _, err := a.Call(ctxT(t), bID, []byte("x"), 30*time.Second); !errors.Is(err, mxp.CodeUnreachable) {
		t.Fatalf("after close: err = %v, want unreachable", err)
	}
}
