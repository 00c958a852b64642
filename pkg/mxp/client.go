package mxp

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Handler answers one received frame; Serve sends back what it returns (nil: nothing).
type Handler func(ctx context.Context, f Frame) *Frame

// Serve calls h for every frame received on c until ctx ends or c closes, sending each
// non-nil answer. A Call is answered with a Response carrying the Call's message id
// unless the handler set another type.
func (c *Conn) Serve(ctx context.Context, h Handler) error {
	for {
		f, err := c.Receive(ctx)
		if err != nil {
			return err
		}
		if r := h(ctx, f); r != nil {
			answering(r, f)
			if err := c.Send(ctx, r); err != nil {
				return err
			}
		}
	}
}

// answering gives r, a Handler's answer to f, f's message id and trace id where r has none.
func answering(r *Frame, f Frame) {
	if r.MessageID == 0 {
		r.MessageID = f.MessageID
	}
	if r.TraceID == 0 {
		r.TraceID = f.TraceID
	}
}

// Echo is the Handler of `mxp echo-server`: it answers each Call with a Response with the
// same message id, trace id and payload, and ignores everything else.
func Echo(_ context.Context, f Frame) *Frame {
	if f.Type != TypeCall {
		return nil
	}
	return &Frame{Type: TypeResponse, MessageID: f.MessageID, TraceID: f.TraceID, Payload: f.Payload}
}

// The edge's client operations: what the CLI and the edge's tests ask of an edge over a
// Conn. They hold no routing logic (the edge does) and never retry: a Call is not
// idempotent.

// CallAgent calls target (an agent or service id) with data and returns the Response
// payload. timeout is sent with the Call (rounded up to whole seconds; 0 lets the edge
// choose); ctx bounds the wait here.
func (c *Conn) CallAgent(ctx context.Context, target AgentID, data []byte, timeout time.Duration) ([]byte, error) {
	cp := CallPayload{Target: target, TimeoutSeconds: uint32((timeout + time.Second - 1) / time.Second), Data: data}
	payload, err := cp.AppendPayload(make([]byte, 0, CallHeaderSize+len(data)))
	if err != nil {
		return nil, err
	}
	r, err := c.Call(ctx, &Frame{Type: TypeCall, TraceID: c.NextID(), Payload: payload})
	if err != nil {
		return nil, err
	}
	return r.Payload, nil
}

// Register registers an agent over this connection; a refusal is an error.
func (c *Conn) Register(ctx context.Context, req RegisterRequest) (RegisterResponse, error) {
	payload, err := req.AppendPayload(nil)
	if err != nil {
		return RegisterResponse{}, err
	}
	r, err := c.Call(ctx, &Frame{Type: TypeAgentRegister, Payload: payload})
	if err != nil {
		return RegisterResponse{}, err
	}
	resp, err := DecodeRegisterResponse(r.Payload)
	if err != nil {
		return resp, err
	}
	if !resp.Success {
		return resp, fmt.Errorf("mxp: registration refused: %s", resp.Message)
	}
	return resp, nil
}

// Heartbeat renews an agent's lease; final deregisters it (FlagFinal).
func (c *Conn) Heartbeat(ctx context.Context, id AgentID, final bool) (HeartbeatResponse, error) {
	req := HeartbeatRequest{AgentID: id}
	payload, err := req.AppendPayload(nil)
	if err != nil {
		return HeartbeatResponse{}, err
	}
	var flags Flags
	if final {
		flags = FlagFinal
	}
	r, err := c.Call(ctx, &Frame{Type: TypeAgentHeartbeat, Flags: flags, Payload: payload})
	if err != nil {
		return HeartbeatResponse{}, err
	}
	if final {
		return HeartbeatResponse{Success: true, AgentID: id}, nil
	}
	return DecodeHeartbeatResponse(r.Payload)
}

// Discover finds agents.
func (c *Conn) Discover(ctx context.Context, req DiscoverRequest) (DiscoverResponse, error) {
	payload, err := req.AppendPayload(nil)
	if err != nil {
		return DiscoverResponse{}, err
	}
	r, err := c.Call(ctx, &Frame{Type: TypeAgentDiscover, Payload: payload})
	if err != nil {
		return DiscoverResponse{}, err
	}
	return DecodeDiscoverResponse(r.Payload)
}

// Respond answers a received Call with a Response carrying data.
func (c *Conn) Respond(ctx context.Context, call Frame, data []byte) error {
	return c.Send(ctx, &Frame{Type: TypeResponse, MessageID: call.MessageID, TraceID: call.TraceID, Payload: data})
}

// RespondError answers a received Call with an Error.
func (c *Conn) RespondError(ctx context.Context, call Frame, code ErrorCode, text string) error {
	ep := ErrorPayload{Error: text, Code: code}
	payload, err := ep.AppendPayload(nil)
	if err != nil {
		return err
	}
	return c.Send(ctx, &Frame{Type: TypeError, MessageID: call.MessageID, TraceID: call.TraceID, Payload: payload})
}

// Inbound is Receive as a channel, for code that selects on it: the frames that answer no
// request, in order; closed when the connection ends (Err says why). The first call
// starts a goroutine that receives until then, so each frame costs a goroutine hand-off
// that Receive does not; do not mix the two.
func (c *Conn) Inbound() <-chan Frame {
	c.inboundOnce.Do(func() {
		c.inbound = make(chan Frame, 64)
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			defer close(c.inbound)
			for {
				f, err := c.Receive(c.ctx)
				if err != nil {
					return
				}
				select {
				case c.inbound <- f:
				case <-c.ctx.Done():
					return
				}
			}
		}()
	})
	return c.inbound
}

// rawSender is a FrameConn that can send bytes that are not a valid frame.
type rawSender interface {
	SendRaw(ctx context.Context, b []byte) error
}

// ErrNoRawSend is returned by SendRaw over a FrameConn that cannot send raw bytes.
var ErrNoRawSend = errors.New("mxp: this connection sends only frames")

// SendRaw sends b as one message (one datagram on the plaintext listener) as it is,
// unchecked: for tools and tests that must send what is not a valid frame, to see the
// peer's answer to bad input. Everything else uses Send.
func (c *Conn) SendRaw(ctx context.Context, b []byte) error {
	if c.t != nil {
		return c.t.Send(ctx, b)
	}
	if r, ok := c.fc.(rawSender); ok {
		return r.SendRaw(ctx, b)
	}
	return ErrNoRawSend
}
