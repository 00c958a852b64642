package mxp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mxp-mesh/mesh/pkg/mxp/transport"
)

// Conn sends and receives MXP frames over one secure transport connection. Each frame is
// one reliable transport message (SendDatagram opts out of reliability). It is safe for
// concurrent use; Call correlates answers by message id so many calls share a Conn.
type Conn struct {
	t      *transport.Conn
	inbox  chan Frame
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	pending map[uint64]chan Frame // Call waiters by message id

	nextID   atomic.Uint64
	rejected atomic.Uint64 // messages that were not valid frames
}

// ErrConnClosed is returned by Receive and Call once the connection is closed.
var ErrConnClosed = transport.ErrClosed

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func newConn(t *transport.Conn, inbox int) *Conn {
	if inbox <= 0 {
		inbox = 1024
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Conn{t: t, inbox: make(chan Frame, inbox), cancel: cancel, pending: make(map[uint64]chan Frame)}
	var seed [8]byte
	if k, err := GeneratePrivateKey(); err == nil { // random start: ids do not reveal call counts
		copy(seed[:], k[:8])
	}
	c.nextID.Store(uint64(seed[0]) | uint64(seed[1])<<8 | uint64(seed[2])<<16 | uint64(seed[3])<<24)
	c.wg.Add(2)
	go c.readLoop(ctx, t.Receive)
	go c.readLoop(ctx, t.ReceiveDatagram)
	return c
}

// readLoop decodes incoming messages: answers go to their Call, the rest to the inbox.
func (c *Conn) readLoop(ctx context.Context, recv func(context.Context) ([]byte, error)) {
	defer c.wg.Done()
	for {
		// Close ends recv by closing the transport connection; a context that the
		// transport never sees ended spares it a read-deadline hook per message.
		b, err := recv(context.Background())
		var tooLarge *transport.MessageTooLargeError
		if errors.As(err, &tooLarge) { // refused by the transport; the connection goes on
			c.rejected.Add(1)
			c.reportTooLarge(ctx, tooLarge)
			continue
		}
		if err != nil {
			return
		}
		f, err := decodeMessage(b)
		if err != nil {
			c.rejected.Add(1)
			c.reportBadFrame(ctx, err)
			continue
		}
		if f.Type == TypeResponse || f.Type == TypeError {
			c.mu.Lock()
			ch, ok := c.pending[f.MessageID]
			if ok {
				delete(c.pending, f.MessageID)
			}
			c.mu.Unlock()
			if ok {
				ch <- f
				continue
			}
		}
		select {
		case c.inbox <- f:
		case <-ctx.Done():
			return
		}
	}
}

// decodeMessage decodes a transport message, which must be exactly one frame.
func decodeMessage(b []byte) (Frame, error) {
	f, n, err := Decode(b)
	if err == nil && n != len(b) {
		err = fmt.Errorf("mxp: %d bytes after the frame in one message", len(b)-n)
	}
	return f, err
}

// badFrameAnswer is the Error frame (message id 0) that tells a peer why a message it sent
// was not a valid frame; nil if the payload cannot be built.
func badFrameAnswer(cause error) *Frame {
	p := NewErrorPayload(cause)
	payload, err := p.AppendPayload(nil)
	if err != nil {
		return nil
	}
	return &Frame{Type: TypeError, Payload: payload}
}

// tooLargeAnswer is the Error frame (code too_large) that answers a message the transport
// refused for its size, naming the message id when its prefix is a frame header.
func tooLargeAnswer(err *transport.MessageTooLargeError) *Frame {
	r := badFrameAnswer(err)
	if r != nil {
		r.MessageID = PeekMessageID(err.Prefix)
	}
	return r
}

// reportTooLarge answers a message the transport refused for its size (best effort, as
// reportBadFrame).
func (c *Conn) reportTooLarge(ctx context.Context, err *transport.MessageTooLargeError) {
	r := tooLargeAnswer(err)
	if r == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_ = c.Send(ctx, r)
}

// reportBadFrame tells the peer, with an Error frame (message id 0), why a message it sent
// was not a valid frame. Best effort: it gives up after a second.
func (c *Conn) reportBadFrame(ctx context.Context, cause error) {
	r := badFrameAnswer(cause)
	if r == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_ = c.Send(ctx, r)
}

// Send sends f reliably: it arrives once, intact and in order with the other frames.
func (c *Conn) Send(ctx context.Context, f *Frame) error { return sendFrame(ctx, c.t, f) }

// sendFrame encodes f into a pooled buffer and sends it reliably on t.
func sendFrame(ctx context.Context, t *transport.Conn, f *Frame) error {
	bp := bufPool.Get().(*[]byte)
	b, err := AppendFrame((*bp)[:0], f)
	if err == nil {
		err = t.Send(ctx, b)
	}
	if cap(b) <= 1<<20 {
		*bp = b[:0]
		bufPool.Put(bp)
	}
	return err
}

// SendDatagram sends f once without reliability (for Events and heartbeats that opt in);
// it fails with transport.ErrDatagramTooLarge when the frame does not fit in one packet.
func (c *Conn) SendDatagram(f *Frame) error {
	bp := bufPool.Get().(*[]byte)
	b, err := AppendFrame((*bp)[:0], f)
	if err == nil {
		err = c.t.SendDatagram(b)
	}
	*bp = b[:0]
	bufPool.Put(bp)
	return err
}

// Receive returns the next frame that is not the answer to a pending Call.
func (c *Conn) Receive(ctx context.Context) (Frame, error) {
	select {
	case f := <-c.inbox:
		return f, nil
	case <-ctx.Done():
		return Frame{}, ctx.Err()
	case <-c.t.Done():
		select {
		case f := <-c.inbox:
			return f, nil
		default:
		}
		return Frame{}, c.closedErr()
	}
}

// closedErr is why the connection closed, typed: it matches ErrConnClosed and, when the
// peer stopped answering or was refused (transport.ErrPeerUnreachable), CodeUnreachable.
func (c *Conn) closedErr() error {
	err := c.t.Err()
	if err == nil {
		return ErrConnClosed
	}
	if errors.Is(err, transport.ErrPeerUnreachable) {
		return fmt.Errorf("%w: %w", CodeUnreachable, err)
	}
	return err
}

// Await tells the transport that the caller waits for an answer from the peer to a frame
// it sent (Call does this itself): while any Await is outstanding a silent peer is
// probed, so a peer that dies holding the request closes the connection within about
// the transport's DeadPeerTimeout, and everything waiting on it fails with
// CodeUnreachable. Each Await must be matched by one EndAwait.
func (c *Conn) Await() { c.t.Await() }

// EndAwait ends one Await.
func (c *Conn) EndAwait() { c.t.EndAwait() }

// Call sends f (a Call; MessageID 0 means "assign one") and waits for the Response or
// Error frame with the same message id. An Error frame is returned with a *RemoteError.
// When the connection dies meanwhile the Call fails at once: with an error matching
// CodeUnreachable when the peer stopped answering (see Await), ErrConnClosed otherwise.
func (c *Conn) Call(ctx context.Context, f *Frame) (Frame, error) {
	if f.MessageID == 0 {
		f.MessageID = c.nextID.Add(1)
	}
	ch := make(chan Frame, 1)
	c.mu.Lock()
	if _, dup := c.pending[f.MessageID]; dup {
		c.mu.Unlock()
		return Frame{}, errors.New("mxp: a call with this message id is already in flight")
	}
	c.pending[f.MessageID] = ch
	c.mu.Unlock()
	c.t.Await()
	defer c.t.EndAwait()
	forget := func() {
		c.mu.Lock()
		delete(c.pending, f.MessageID)
		c.mu.Unlock()
	}
	if err := c.Send(ctx, f); err != nil {
		forget()
		return Frame{}, err
	}
	select {
	case r := <-ch:
		if r.Type == TypeError {
			p, err := DecodeErrorPayload(r.Payload)
			if err != nil {
				return r, err
			}
			return r, p.Err()
		}
		return r, nil
	case <-ctx.Done():
		forget()
		return Frame{}, ctx.Err()
	case <-c.t.Done():
		forget()
		return Frame{}, c.closedErr()
	}
}

// PeerKey is the peer's authenticated public key.
func (c *Conn) PeerKey() PublicKey { return c.t.PeerKey() }

// RemoteAddr is the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.t.RemoteAddr() }

// LocalAddr is the local socket address.
func (c *Conn) LocalAddr() net.Addr { return c.t.LocalAddr() }

// Stats reports RTT, loss and byte counters of the connection.
func (c *Conn) Stats() transport.Stats { return c.t.Stats() }

// RejectedFrames counts received messages that were not valid MXP frames: each was
// dropped and answered with an Error frame (message id 0) naming the fault.
func (c *Conn) RejectedFrames() uint64 { return c.rejected.Load() }

// Done is closed when the connection closes.
func (c *Conn) Done() <-chan struct{} { return c.t.Done() }

// Close flushes sent frames (bounded by the transport's Linger), closes the connection
// and waits for its goroutines.
func (c *Conn) Close() error {
	err := c.t.Close()
	c.cancel()
	c.wg.Wait()
	return err
}
