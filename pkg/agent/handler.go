package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Kind is the kind of a message an agent receives or sends.
type Kind uint8

// Message kinds. The first five arrive at an agent; Response and Error leave it, and an
// Error also arrives when the peer refused something the agent sent without waiting for
// an answer (a chunk of a stream the peer had already ended): Dispatch ends that stream.
const (
	KindCall        Kind = iota + 1 // a request that wants a Response or an Error
	KindEvent                       // a one-way notification on a topic
	KindStreamOpen                  // a peer opens a stream
	KindStreamChunk                 // a piece of an open stream (either direction)
	KindStreamClose                 // the end of a stream (either direction)
	KindResponse                    // the answer to a Call
	KindError                       // a failed Call or stream; Outbound.Err says why
)

var kindNames = [...]string{"", "call", "event", "stream_open", "stream_chunk", "stream_close", "response", "error"}

func (k Kind) String() string {
	if int(k) < len(kindNames) && k != 0 {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Meta describes the message a handler is working on. Handlers get it from their
// context with MetaFrom.
type Meta struct {
	Kind      Kind
	MessageID uint64    // the MXP message id; a Response carries the Call's
	TraceID   uint64    // the MXP trace id, carried into every call the handler makes
	From      string    // the caller's agent id, as authenticated by the mesh
	Deadline  time.Time // when the caller stops waiting; zero for none
	Topic     string    // KindEvent: the topic
	StreamID  string    // stream kinds: the stream
}

type metaKey struct{}

// MetaFrom returns the Meta of the message the context's handler is serving.
func MetaFrom(ctx context.Context) (Meta, bool) {
	m, ok := ctx.Value(metaKey{}).(Meta)
	return m, ok
}

// WithMeta returns a context carrying m. The SDK sets it for handlers; tests of
// handlers use it to fake a caller.
func WithMeta(ctx context.Context, m Meta) context.Context {
	return context.WithValue(ctx, metaKey{}, m)
}

// CallHandler answers a Call: the bytes it returns are the Response payload; an error is
// sent as an Error frame with CodeOf(err). The context carries Meta and the caller's
// deadline and is cancelled when the agent gives up on the call.
type CallHandler func(ctx context.Context, payload []byte) ([]byte, error)

// Event is a one-way message on a topic.
type Event struct {
	Topic   string
	Payload []byte
}

// EventHandler handles an Event. Nothing is sent back; a returned error is logged and
// counted.
type EventHandler func(ctx context.Context, ev Event) error

// StreamHandler serves a stream a peer opened: read with s.Recv, answer with s.Send. When
// it returns nil the stream is closed normally; an error is sent to the peer as an Error.
type StreamHandler func(ctx context.Context, s *Stream) error

// JSONCall adapts a typed function to a CallHandler: the payload is decoded from JSON into
// Req (bad JSON is answered with CodeInvalidArgument without calling fn) and Resp is
// encoded as JSON.
func JSONCall[Req, Resp any](fn func(ctx context.Context, req Req) (Resp, error)) CallHandler {
	return func(ctx context.Context, payload []byte) ([]byte, error) {
		var req Req
		if err := json.Unmarshal(payload, &req); err != nil {
			return nil, Errorf(CodeInvalidArgument, "request is not the expected JSON: %v", err)
		}
		resp, err := fn(ctx, req)
		if err != nil {
			return nil, err
		}
		out, err := json.Marshal(resp)
		if err != nil {
			return nil, Errorf(CodeInternal, "encoding response: %v", err)
		}
		return out, nil
	}
}
