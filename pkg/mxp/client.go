package mxp

import "context"

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
