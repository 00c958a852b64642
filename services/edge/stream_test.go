package edge

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

func openStream(t *testing.T, c *mxp.Conn, target mxp.AgentID) mxp.StreamID {
	t.Helper()
	sid := mxp.NewStreamID()
	p := mxp.StreamOpenPayload{StreamID: sid, Target: target, Kind: mxp.StreamKindBytes, Data: []byte("hi")}
	payload, _ := p.AppendPayload(nil)
	r, err := c.Request(ctxT(t), &mxp.Frame{Type: mxp.TypeStreamOpen, Payload: payload})
	if err != nil || r.Type != mxp.TypeResponse {
		t.Fatalf("StreamOpen answered %v, %v", r.Type, err)
	}
	return sid
}

func chunkFrame(sid mxp.StreamID, data []byte) *mxp.Frame {
	p := mxp.StreamChunkPayload{StreamID: sid, Data: data}
	payload, _ := p.AppendPayload(nil)
	return &mxp.Frame{Type: mxp.TypeStreamChunk, Flags: mxp.FlagRequiresAck, Payload: payload}
}

// nextStreamFrame returns the next stream frame delivered to c.
func nextStreamFrame(t *testing.T, c *mxp.Conn) mxp.Frame {
	t.Helper()
	for {
		select {
		case f := <-c.Inbound():
			switch f.Type {
			case mxp.TypeStreamOpen, mxp.TypeStreamChunk, mxp.TypeStreamClose:
				return f
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no stream frame")
		}
	}
}

func TestStreamTenThousandChunksInOrder(t *testing.T) {
	m := newTwoEdges(t, nil)
	sid := openStream(t, m.a, m.bID)
	const n = 10_000
	received := make(chan error, 1)
	go func() {
		received <- func() error {
			f := nextStreamFrame(t, m.b)
			op, err := mxp.DecodeStreamOpen(f.Payload)
			if f.Type != mxp.TypeStreamOpen || err != nil || op.StreamID != sid || string(op.Data) != "hi" {
				return errorf("first frame %s %v, want the StreamOpen", f.Type, err)
			}
			for i := range n {
				f := nextStreamFrame(t, m.b)
				ch, err := mxp.DecodeStreamChunk(f.Payload)
				if f.Type != mxp.TypeStreamChunk || err != nil {
					return errorf("frame %d: %s %v", i, f.Type, err)
				}
				if got := binary.LittleEndian.Uint64(ch.Data); got != uint64(i) {
					return errorf("chunk %d carries %d: out of order", i, got)
				}
			}
			f = nextStreamFrame(t, m.b)
			cl, err := mxp.DecodeStreamClose(f.Payload)
			if f.Type != mxp.TypeStreamClose || err != nil || cl.Error != nil {
				return errorf("end: %s %+v %v, want a clean StreamClose", f.Type, cl, err)
			}
			return nil
		}()
	}()

	// The sender keeps a window of acknowledged chunks in flight (the plaintext
	// transport can lose datagrams under a flood; acks keep it honest).
	const window = 32
	var inflight []*mxp.Pending
	for i := range n {
		data := binary.LittleEndian.AppendUint64(nil, uint64(i))
		p, err := m.a.Start(ctxT(t), chunkFrame(sid, data))
		if err != nil {
			t.Fatal(err)
		}
		inflight = append(inflight, p)
		if len(inflight) == window {
			if _, err := inflight[0].Wait(ctxT(t)); err != nil {
				t.Fatalf("chunk ack: %v", err)
			}
			inflight = inflight[1:]
		}
	}
	for _, p := range inflight {
		if _, err := p.Wait(ctxT(t)); err != nil {
			t.Fatalf("chunk ack: %v", err)
		}
	}
	cl := mxp.StreamClosePayload{StreamID: sid}
	payload, _ := cl.AppendPayload(nil)
	if _, err := m.a.Request(ctxT(t), &mxp.Frame{Type: mxp.TypeStreamClose, Flags: mxp.FlagFinal | mxp.FlagRequiresAck, Payload: payload}); err != nil {
		t.Fatal(err)
	}
	if err := <-received; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "stream ends removed", func() bool {
		return testStreams(m.e1.Edge) == 0 && testStreams(m.e2.Edge) == 0
	})
}

func TestStreamEndsWithErrorWhenAPeerDisconnects(t *testing.T) {
	for _, side := range []string{"opener", "target"} {
		t.Run(side, func(t *testing.T) {
			m := newTwoEdges(t, func(c *Config) { c.IdleTimeout = 300 * time.Millisecond })
			go keepAlive(m.a, m.aID, 20*time.Millisecond)
			go keepAlive(m.b, m.bID, 20*time.Millisecond)
			sid := openStream(t, m.a, m.bID)
			if f := nextStreamFrame(t, m.b); f.Type != mxp.TypeStreamOpen {
				t.Fatalf("got %s", f.Type)
			}
			// B answers on the stream: the reverse direction works too.
			if _, err := m.b.Request(ctxT(t), chunkFrame(sid, []byte("back"))); err != nil {
				t.Fatal(err)
			}
			if f := nextStreamFrame(t, m.a); f.Type != mxp.TypeStreamChunk {
				t.Fatalf("A got %s, want B's chunk", f.Type)
			}
			survivor, gone := m.b, m.a
			if side == "target" {
				survivor, gone = m.a, m.b
			}
			gone.Close() // its plaintext connection times out; the survivor's stays alive
			f := nextStreamFrame(t, survivor)
			cl, err := mxp.DecodeStreamClose(f.Payload)
			if f.Type != mxp.TypeStreamClose || err != nil || cl.Error == nil || cl.Error.Code != mxp.CodeUnavailable {
				t.Fatalf("survivor got %s %+v %v; want StreamClose with unavailable", f.Type, cl, err)
			}
		})
	}
}

func keepAlive(c *mxp.Conn, id mxp.AgentID, every time.Duration) {
	for {
		select {
		case <-c.Done():
			return
		case <-time.After(every):
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, _ = c.Heartbeat(ctx, id, false)
			cancel()
		}
	}
}

func testStreams(e *Edge) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.streams)
}

type testError string

func (e testError) Error() string { return string(e) }

func errorf(format string, a ...any) error { return testError(sprintf(format, a...)) }
