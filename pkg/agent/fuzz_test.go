package agent

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// discardConn is a FrameConn that drops what is sent and never receives.
type discardConn struct{ closed chan struct{} }

func (d *discardConn) Send(context.Context, *mxp.Frame) error { return nil }
func (d *discardConn) Receive(ctx context.Context) (mxp.Frame, error) {
	select {
	case <-d.closed:
		return mxp.Frame{}, io.EOF
	case <-ctx.Done():
		return mxp.Frame{}, ctx.Err()
	}
}
func (d *discardConn) Close() error { close(d.closed); return nil }

// FuzzLinkInbound feeds arbitrary frames (any type, any payload) to the agent's frame
// handling: it must never panic, and whatever it accepts must come out as a well-formed
// Inbound message (an Error frame that answers nothing comes out as KindError, for the
// dispatcher to end the stream it refuses).
func FuzzLinkInbound(f *testing.F) {
	call, _ := (&mxp.CallPayload{Target: mxp.AgentID{1}, TimeoutSeconds: 3, Data: []byte("x")}).AppendPayload(nil)
	ev, _ := (&mxp.EventPayload{Topic: "a.b", Data: []byte("y")}).AppendPayload(nil)
	open, _ := (&mxp.StreamOpenPayload{StreamID: mxp.StreamID{2}, Target: mxp.AgentID{1}}).AppendPayload(nil)
	for _, seed := range []struct {
		typ     uint8
		payload []byte
	}{{0x10, call}, {0x12, ev}, {0x20, open}, {0x21, []byte{1}}, {0x22, append(make([]byte, 15), 1, '{')}, {0x11, nil}, {0xF1, []byte("{")}, {0x01, []byte("{}")}} {
		f.Add(seed.typ, seed.payload)
	}
	f.Fuzz(func(t *testing.T, typ uint8, payload []byte) {
		fc := &discardConn{closed: make(chan struct{})}
		l := newLink(fc, mxp.AgentID{9}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		defer l.Close()
		if in, ok := l.handleFrame(context.Background(), mxp.Frame{Type: mxp.MessageType(typ), MessageID: 1, Payload: payload}); ok {
			if (in.Kind < KindCall || in.Kind > KindStreamClose) && !(in.Kind == KindError && typ == uint8(mxp.TypeError)) {
				t.Fatalf("inbound of kind %s", in.Kind)
			}
			if (in.Kind == KindStreamOpen || in.Kind == KindStreamChunk || in.Kind == KindStreamClose) && in.StreamID == "" {
				t.Fatalf("stream message without a stream id: %+v", in)
			}
		}
	})
}
