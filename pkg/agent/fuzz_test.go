package agent

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// FuzzSchemaTags builds a struct type whose fields carry arbitrary tags and derives its
// schema: the tag parser must return a schema or an error, never panic, and whatever it
// accepts must compile as a JSON Schema.
func FuzzSchemaTags(f *testing.F) {
	seeds := []string{
		`json:"n" mxp:"min=1,max=3"`,
		`json:"s,omitempty" enum:"a,b" pattern:"^[a-z]+$"`,
		`json:"s" mxp:"minLength=-1"`,
		`mxp:"required,optional,format=email"`,
		`json:"-"`,
		`json:",omitzero" desc:"x"`,
		`pattern:"("`,
		`enum:"1,,2" mxp:"maxItems=1"`,
	}
	kinds := []reflect.Type{reflect.TypeFor[int](), reflect.TypeFor[string](), reflect.TypeFor[[]float64](), reflect.TypeFor[*bool](), reflect.TypeFor[map[string]int]()}
	for i, s := range seeds {
		f.Add(s, uint8(i))
	}
	f.Fuzz(func(t *testing.T, tag string, kind uint8) {
		typ := reflect.StructOf([]reflect.StructField{{Name: "F", Type: kinds[int(kind)%len(kinds)], Tag: reflect.StructTag(tag)}})
		schema, err := schemaForType(typ)
		if err != nil {
			return
		}
		// A pattern that is not a valid regexp is caught when the schema is compiled.
		_, _ = compileSchema("fuzz", schema)
	})
}

// FuzzLoadCheckpoint feeds arbitrary bytes as a checkpoint file: loading must fail with an
// error or succeed, never panic.
func FuzzLoadCheckpoint(f *testing.F) {
	f.Add([]byte(`{"version":1,"state":{"goal":"x"},"conversation":[{"role":"user","content":"hi"}]}`))
	f.Add([]byte(`{"version":1,"state":null}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`[]`))
	path := filepath.Join(f.TempDir(), "ckpt")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		var state map[string]any
		conv := NewRing[Message](4)
		if _, err := LoadCheckpoint(path, &state, conv); err == nil && conv.Len() > 4 {
			t.Fatalf("ring over capacity: %d", conv.Len())
		}
	})
}

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
// Inbound message.
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
		l.handleFrame(context.Background(), mxp.Frame{Type: mxp.MessageType(typ), MessageID: 1, Payload: payload})
		select {
		case in := <-l.inbound:
			if in.Kind < KindCall || in.Kind > KindStreamClose {
				t.Fatalf("inbound of kind %s", in.Kind)
			}
			if (in.Kind == KindStreamOpen || in.Kind == KindStreamChunk || in.Kind == KindStreamClose) && in.StreamID == "" {
				t.Fatalf("stream message without a stream id: %+v", in)
			}
		default:
		}
	})
}
