// Package client is a small MXP client for the edge: it sends frames over a Conn (one
// frame per message), matches Responses, Errors and Acks to requests by message id, and
// hands every other frame (Calls, Events, stream frames delivered to the connection's
// agents) to Inbound. The mxp CLI (`mxp call`, `mxp agent echo`, `mxp bench`) and the
// edge's tests use it.
//
// It must not hold routing logic (the edge does) and must not retry a request: a Call is
// not idempotent.
package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// Conn carries whole encoded frames, one per message.
type Conn interface {
	// Send transmits one frame; the Conn must not keep frame after returning.
	Send(ctx context.Context, frame []byte) error
	// Recv returns the next message; the slice is the caller's to keep.
	Recv() ([]byte, error)
	Close() error
}

// ErrClosed is returned by calls on a closed Client.
var ErrClosed = errors.New("client: closed")

// awaiter is a Conn whose transport can probe the edge while answers are owed
// (SecureConn): every request in flight is bracketed with Await and EndAwait.
type awaiter interface {
	Await()
	EndAwait()
}

// Client is an MXP connection to an edge. It is safe for concurrent use.
type Client struct {
	conn    Conn
	nextID  atomic.Uint64
	mu      sync.Mutex
	pending map[uint64]chan mxp.Frame
	inbound chan mxp.Frame
	done    chan struct{}
	once    sync.Once
	err     error
	// Invalid counts received messages that did not decode as frames.
	Invalid atomic.Uint64
}

// New starts a Client on conn. inboundQueue bounds the frames waiting in Inbound (default
// 4096); when it is full the reader waits, and the transport's own buffers fill.
func New(conn Conn, inboundQueue int) *Client {
	if inboundQueue <= 0 {
		inboundQueue = 4096
	}
	c := &Client{conn: conn, pending: map[uint64]chan mxp.Frame{}, inbound: make(chan mxp.Frame, inboundQueue), done: make(chan struct{})}
	c.nextID.Store(uint64(time.Now().UnixNano()) & (1<<62 - 1))
	go c.read()
	return c
}

// DialCompat connects to the edge's plaintext listener at addr (host:port).
func DialCompat(addr string) (*Client, error) {
	conn, err := DialUDP(addr)
	if err != nil {
		return nil, err
	}
	return New(conn, 0), nil
}

// NextID returns a fresh message id.
func (c *Client) NextID() uint64 { return c.nextID.Add(1) }

// Inbound delivers the frames that answer no request of this client: Calls for its
// agents, Events of its subscriptions, stream frames. It is closed when the Client ends.
func (c *Client) Inbound() <-chan mxp.Frame { return c.inbound }

// Done is closed when the Client ends; Err then says why.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err is the reason the Client ended (nil while it runs).
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *Client) read() {
	for {
		msg, err := c.conn.Recv()
		if err != nil {
			c.end(err)
			return
		}
		f, _, err := mxp.Decode(msg)
		if err != nil {
			c.Invalid.Add(1)
			continue
		}
		switch f.Type {
		case mxp.TypeResponse, mxp.TypeError, mxp.TypeAck:
			c.mu.Lock()
			ch := c.pending[f.MessageID]
			delete(c.pending, f.MessageID)
			c.mu.Unlock()
			if ch != nil {
				ch <- f
				continue
			}
			if f.Type == mxp.TypeAck {
				continue // an Ack for a request already answered
			}
		}
		select {
		case c.inbound <- f:
		case <-c.done:
			return
		}
	}
}

func (c *Client) end(err error) {
	c.once.Do(func() {
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
		close(c.done)
	})
}

// Close ends the Client and its Conn.
func (c *Client) Close() error {
	c.end(ErrClosed)
	return c.conn.Close()
}

// Send sends f without waiting for an answer. A zero MessageID gets a fresh one.
func (c *Client) Send(ctx context.Context, f *mxp.Frame) error {
	if f.MessageID == 0 {
		f.MessageID = c.NextID()
	}
	b, err := mxp.AppendFrame(nil, f)
	if err != nil {
		return err
	}
	select {
	case <-c.done:
		return ErrClosed
	default:
	}
	return c.conn.Send(ctx, b)
}

// Pending is a request sent and not yet answered (see Start).
type Pending struct {
	c  *Client
	id uint64
	ch chan mxp.Frame
}

// Start sends f and returns at once; Wait then waits for its answer. It lets a caller keep
// a window of requests in flight while sending them in order (stream chunks with
// REQUIRES_ACK, for example).
func (c *Client) Start(ctx context.Context, f *mxp.Frame) (*Pending, error) {
	if f.MessageID == 0 {
		f.MessageID = c.NextID()
	}
	p := &Pending{c: c, id: f.MessageID, ch: make(chan mxp.Frame, 1)}
	c.mu.Lock()
	c.pending[f.MessageID] = p.ch
	c.mu.Unlock()
	if a, ok := c.conn.(awaiter); ok {
		a.Await()
	}
	if err := c.Send(ctx, f); err != nil {
		p.forget()
		return nil, err
	}
	return p, nil
}

// forget ends the request's wait. Contract: called exactly once per Pending (by Start
// when the send failed, by Wait otherwise).
func (p *Pending) forget() {
	p.c.mu.Lock()
	delete(p.c.pending, p.id)
	p.c.mu.Unlock()
	if a, ok := p.c.conn.(awaiter); ok {
		a.EndAwait()
	}
}

// Wait waits for the answer: a Response or Ack as is, an Error as a *mxp.RemoteError.
func (p *Pending) Wait(ctx context.Context) (mxp.Frame, error) {
	defer p.forget()
	select {
	case r := <-p.ch:
		if r.Type == mxp.TypeError {
			return r, remoteError(r.Payload)
		}
		return r, nil
	case <-ctx.Done():
		return mxp.Frame{}, ctx.Err()
	case <-p.c.done:
		return mxp.Frame{}, p.c.closedErr()
	}
}

// closedErr is why requests in flight failed when the Client ended: ErrClosed, with the
// connection's reason, and mxp.CodeUnreachable when the edge stopped answering.
func (c *Client) closedErr() error {
	err := c.Err()
	switch {
	case err == nil || errors.Is(err, ErrClosed):
		return ErrClosed
	case mxp.ErrorCodeFor(err) == mxp.CodeUnreachable:
		return fmt.Errorf("%w: %w: %w", ErrClosed, mxp.CodeUnreachable, err)
	}
	return fmt.Errorf("%w: %w", ErrClosed, err)
}

// Request sends f and waits for the frame that answers it: a Response or an Ack (returned
// as is) or an Error (returned as a *mxp.RemoteError). A zero MessageID gets a fresh one.
func (c *Client) Request(ctx context.Context, f *mxp.Frame) (mxp.Frame, error) {
	p, err := c.Start(ctx, f)
	if err != nil {
		return mxp.Frame{}, err
	}
	return p.Wait(ctx)
}

func remoteError(payload []byte) error {
	ep, err := mxp.DecodeErrorPayload(payload)
	if err != nil {
		return &mxp.RemoteError{Code: mxp.CodeInternal, Message: "malformed Error payload: " + err.Error()}
	}
	return ep.Err()
}

// Call calls target with data and returns the Response payload. timeout 0 lets the edge
// choose; ctx bounds the wait here.
func (c *Client) Call(ctx context.Context, target mxp.AgentID, data []byte, timeout time.Duration) ([]byte, error) {
	cp := mxp.CallPayload{Target: target, TimeoutSeconds: uint32((timeout + time.Second - 1) / time.Second), Data: data}
	payload, err := cp.AppendPayload(make([]byte, 0, mxp.CallHeaderSize+len(data)))
	if err != nil {
		return nil, err
	}
	r, err := c.Request(ctx, &mxp.Frame{Type: mxp.TypeCall, TraceID: c.NextID(), Payload: payload})
	if err != nil {
		return nil, err
	}
	return r.Payload, nil
}

// Register registers an agent over this connection.
func (c *Client) Register(ctx context.Context, req mxp.RegisterRequest) (mxp.RegisterResponse, error) {
	payload, err := req.AppendPayload(nil)
	if err != nil {
		return mxp.RegisterResponse{}, err
	}
	r, err := c.Request(ctx, &mxp.Frame{Type: mxp.TypeAgentRegister, Payload: payload})
	if err != nil {
		return mxp.RegisterResponse{}, err
	}
	resp, err := mxp.DecodeRegisterResponse(r.Payload)
	if err != nil {
		return resp, err
	}
	if !resp.Success {
		return resp, fmt.Errorf("client: registration refused: %s", resp.Message)
	}
	return resp, nil
}

// Heartbeat renews an agent's lease; final deregisters it.
func (c *Client) Heartbeat(ctx context.Context, id mxp.AgentID, final bool) (mxp.HeartbeatResponse, error) {
	req := mxp.HeartbeatRequest{AgentID: id}
	payload, err := req.AppendPayload(nil)
	if err != nil {
		return mxp.HeartbeatResponse{}, err
	}
	var flags mxp.Flags
	if final {
		flags = mxp.FlagFinal
	}
	r, err := c.Request(ctx, &mxp.Frame{Type: mxp.TypeAgentHeartbeat, Flags: flags, Payload: payload})
	if err != nil {
		return mxp.HeartbeatResponse{}, err
	}
	if final {
		return mxp.HeartbeatResponse{Success: true, AgentID: id}, nil
	}
	return mxp.DecodeHeartbeatResponse(r.Payload)
}

// Discover finds agents.
func (c *Client) Discover(ctx context.Context, req mxp.DiscoverRequest) (mxp.DiscoverResponse, error) {
	payload, err := req.AppendPayload(nil)
	if err != nil {
		return mxp.DiscoverResponse{}, err
	}
	r, err := c.Request(ctx, &mxp.Frame{Type: mxp.TypeAgentDiscover, Payload: payload})
	if err != nil {
		return mxp.DiscoverResponse{}, err
	}
	return mxp.DecodeDiscoverResponse(r.Payload)
}

// Respond answers a Call delivered on Inbound with a Response carrying data.
func (c *Client) Respond(ctx context.Context, call mxp.Frame, data []byte) error {
	return c.Send(ctx, &mxp.Frame{Type: mxp.TypeResponse, MessageID: call.MessageID, TraceID: call.TraceID, Payload: data})
}

// RespondError answers a Call delivered on Inbound with an Error.
func (c *Client) RespondError(ctx context.Context, call mxp.Frame, code mxp.ErrorCode, text string) error {
	ep := mxp.ErrorPayload{Error: text, Code: code}
	payload, err := ep.AppendPayload(nil)
	if err != nil {
		return err
	}
	return c.Send(ctx, &mxp.Frame{Type: mxp.TypeError, MessageID: call.MessageID, TraceID: call.TraceID, Payload: payload})
}

// UDPConn is a Conn over a connected UDP socket: the plaintext MXP of the reference SDK,
// one frame per datagram.
type UDPConn struct {
	c   *net.UDPConn
	buf []byte // Recv is called by one goroutine
}

// DialUDP opens a UDPConn to addr.
func DialUDP(addr string) (*UDPConn, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("client: address %q: %w", addr, err)
	}
	c, err := net.DialUDP("udp", nil, ua)
	if err != nil {
		return nil, fmt.Errorf("client: dial %s: %w", addr, err)
	}
	_ = c.SetReadBuffer(8 << 20)
	_ = c.SetWriteBuffer(8 << 20)
	return &UDPConn{c: c}, nil
}

// Send implements Conn.
func (u *UDPConn) Send(_ context.Context, frame []byte) error {
	_, err := u.c.Write(frame)
	return err
}

// Recv implements Conn. Connection-refused errors (ICMP port unreachable: no edge at the
// address yet) are skipped.
func (u *UDPConn) Recv() ([]byte, error) {
	if u.buf == nil {
		u.buf = make([]byte, 65536)
	}
	for {
		n, err := u.c.Read(u.buf)
		if err != nil {
			var oe *net.OpError
			if errors.As(err, &oe) && !errors.Is(err, net.ErrClosed) && isRefused(err) {
				continue
			}
			return nil, err
		}
		out := make([]byte, n)
		copy(out, u.buf[:n])
		return out, nil
	}
}

// Close implements Conn.
func (u *UDPConn) Close() error { return u.c.Close() }

// LocalAddr is the socket's local address.
func (u *UDPConn) LocalAddr() net.Addr { return u.c.LocalAddr() }
