package edge

import (
	"encoding/binary"
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

	got, err := a.CallAgent(ctxT(t), bID, []byte("over noise"), 5*time.Second)
	if err != nil || string(got) != "over noise" {
		t.Fatalf("secure call = %q, %v", got, err)
	}
	e3 := startEdge(t, bs, nil)
	c := dial(t, e3.addr)
	if got, err := c.CallAgent(ctxT(t), bID, []byte("from plaintext"), 5*time.Second); err != nil || string(got) != "from plaintext" {
		t.Fatalf("plaintext → secure call = %q, %v", got, err)
	}
	if n := framesMetric(e2.Edge, "Call", "out", "ok"); n != 2 {
		t.Fatalf("edge 2 delivered %v calls, want 2", n)
	}
	b.Close()
	waitFor(t, "B deregistered after its secure connection closed", func() bool { return !reg.has(bID) })
	if _, err := a.CallAgent(ctxT(t), bID, []byte("x"), 30*time.Second); !errors.Is(err, mxp.CodeUnreachable) {
		t.Fatalf("after close: err = %v, want unreachable", err)
	}
}

// TestSecureStreamBackpressure: over the secure transport the sender writes 10,000 chunks
// without waiting for acks; the edges relay them in order within their credit windows,
// and the transport's flow control holds the sender back meanwhile.
func TestSecureStreamBackpressure(t *testing.T) {
	bs := testBus(t)
	startFakeRegistry(t, bs)
	e1, k1 := startSecureEdge(t, bs)
	e2, k2 := startSecureEdge(t, bs)
	a := dialSecure(t, e1.addr, k1)
	b := dialSecure(t, e2.addr, k2)
	registerAgent(t, a, "alice")
	bID := registerAgent(t, b, "bob")
	sid := openStream(t, a, bID)
	const n = 10_000
	got := make(chan error, 1)
	go func() {
		got <- func() error {
			if f := nextStreamFrame(t, b); f.Type != mxp.TypeStreamOpen {
				return errorf("first %s", f.Type)
			}
			for i := range n {
				f := nextStreamFrame(t, b)
				ch, err := mxp.DecodeStreamChunk(f.Payload)
				if err != nil || binary.LittleEndian.Uint64(ch.Data) != uint64(i) {
					return errorf("chunk %d: %s %v", i, f.Type, err)
				}
			}
			f := nextStreamFrame(t, b)
			if cl, err := mxp.DecodeStreamClose(f.Payload); err != nil || cl.Error != nil {
				return errorf("close %+v %v", cl, err)
			}
			return nil
		}()
	}()
	for i := range n {
		f := chunkFrame(sid, binary.LittleEndian.AppendUint64(make([]byte, 0, 1024), uint64(i))[:1024])
		f.Flags = 0
		if err := a.Send(ctxT(t), f); err != nil {
			t.Fatal(err)
		}
	}
	cl := mxp.StreamClosePayload{StreamID: sid}
	payload, _ := cl.AppendPayload(nil)
	if err := a.Send(ctxT(t), &mxp.Frame{Type: mxp.TypeStreamClose, Flags: mxp.FlagFinal, Payload: payload}); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if n := framesMetric(e2.Edge, "StreamChunk", "out", "ok"); n != 10_000 {
		t.Fatalf("edge 2 delivered %v chunks", n)
	}
}
