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

// Conn sends and receives MXP frames over one secure transport connection (Dial, Accept)
// or over any FrameConn (NewConn: the plaintext UDP of DialPlaintext, in-memory pipes in
// tests). Each frame is one reliable transport message (SendDatagram opts out of
// reliability). It is safe for concurrent use and is the one correlator of MXP answers:
// Call, Request and Start match Responses, Errors and Acks to their request by message
// id, so many requests share a Conn; every other frame waits for Receive.
//
// Nobody reads for the Conn in the background: the goroutines that wait (in Call, Wait or
// Receive) take turns reading. One of them at a time reads the connection (on the secure
// transport, the socket itself: see transport's lend.go) and routes what it reads: an
// answer to its own request or a frame for its own Receive is returned on the spot, with
// no goroutine hand-off; an answer for another waiter wakes that waiter, which is the one
// hand-off concurrency needs. When the reader returns, it hands the reading on to a
// waiter. With nobody waiting, received messages stay queued in the transport (its
// receive budget and flow control bound them), which acknowledges and answers probes on
// its own.
//
// The queue for Receive holds at most InboxSize frames. A full queue stops Receive's
// reading only: a request waiting for its answer reads on, so it always gets ITS answer
// even when the application stopped calling Receive (a retiring agent's deregister). A
// frame it reads that answers no request and finds the queue full is shed and counted
// (ShedFrames): a request (Call, StreamOpen, registry frames, anything with
// FlagRequiresAck) is answered with an Error of code overloaded carrying its message id,
// a stream chunk or close with a StreamClose of code overloaded for its stream, so its
// sender learns at once; an Event or an answer to no pending request is dropped.
type Conn struct {
	t      *transport.Conn // the secure transport; nil over a FrameConn
	fc     FrameConn       // NewConn's; nil over the secure transport
	ctx    context.Context // ends at Close: bounds the answers to bad frames
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	pending   map[uint64]*waiter // requests waiting for their answer, by message id
	reading   bool               // a waiter is reading the connection
	followers []*waiter          // waiters not reading, woken to read or by their frame
	queue     []Frame            // frames for Receive, in order
	queueHead int
	queueCap  int   // Options.InboxSize: at this many queued frames, further ones are shed
	failed    error // FrameConn: why it ended (under mu)

	closed    chan struct{} // FrameConn: closed when it fails or Close is called
	closeOnce sync.Once

	inbound     chan Frame // Inbound's, fed by its goroutine
	inboundOnce sync.Once

	nextID      atomic.Uint64
	rejected    atomic.Uint64 // messages that were not valid frames
	droppedDgrm atomic.Uint64 // datagrams dropped because the queue for Receive was full
	shed        atomic.Uint64 // reliable frames shed because the queue for Receive was full
}

// FrameConn moves whole MXP frames, one at a time, in both directions. NewConn runs the
// Conn's correlator over one: the plaintext UDP of DialPlaintext, or an in-memory pipe in
// tests. Receive must honour ctx and may reuse the returned payload's memory at the next
// Receive (NewConn copies it); Send must be safe for concurrent use.
type FrameConn interface {
	Send(ctx context.Context, f *Frame) error
	Receive(ctx context.Context) (Frame, error)
	Close() error
}

// waiter is a goroutine in Call, Wait or Receive. ch (capacity 1) wakes it when its answer
// came (got), when a frame was queued for it (recv), or to take its turn at reading.
type waiter struct {
	ch   chan struct{}
	f    Frame
	got  bool
	recv bool // a Receive waiter
}

var waiterPool = sync.Pool{New: func() any { return &waiter{ch: make(chan struct{}, 1)} }}

func getWaiter(recv bool) *waiter {
	w := waiterPool.Get().(*waiter)
	w.recv = recv
	return w
}

// putWaiter recycles w. Contract: w is in neither pending nor followers, so nothing
// signals it any more; a signal left in ch is drained.
func putWaiter(w *waiter) {
	select {
	case <-w.ch:
	default:
	}
	*w = waiter{ch: w.ch}
	waiterPool.Put(w)
}

func wake(w *waiter) {
	select {
	case w.ch <- struct{}{}:
	default:
	}
}

// ErrConnClosed is returned by Receive and Call once the connection is closed.
var ErrConnClosed = transport.ErrClosed

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func newConn(t *transport.Conn, inbox int) *Conn {
	c := newConnCommon(inbox)
	c.t = t
	c.wg.Add(1)
	go c.datagramLoop()
	return c
}

// NewConn runs a Conn over fc: the same correlator (Call, Request, Start, Receive) as over
// the secure transport. inbox is Options.InboxSize (0: the default). Without the
// transport there is no peer key (PeerKey is zero), no probing of a silent peer (Await is
// a no-op) and SendDatagram sends reliably. Close closes fc.
func NewConn(fc FrameConn, inbox int) *Conn {
	c := newConnCommon(inbox)
	c.fc = fc
	c.closed = make(chan struct{})
	return c
}

func newConnCommon(inbox int) *Conn {
	if inbox <= 0 {
		inbox = 1024
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Conn{ctx: ctx, cancel: cancel, pending: make(map[uint64]*waiter), queueCap: inbox}
	var seed [8]byte
	if k, err := GeneratePrivateKey(); err == nil { // random start: ids do not reveal call counts
		copy(seed[:], k[:8])
	}
	c.nextID.Store(uint64(seed[0]) | uint64(seed[1])<<8 | uint64(seed[2])<<16 | uint64(seed[3])<<24)
	return c
}

// NextID returns a fresh message id (never 0), unique on this connection.
func (c *Conn) NextID() uint64 {
	for {
		if id := c.nextID.Add(1); id != 0 {
			return id
		}
	}
}

// isAnswer reports whether frames of type t answer a request (by its message id).
func isAnswer(t MessageType) bool {
	return t == TypeResponse || t == TypeError || t == TypeAck
}

// readFrame reads the next valid frame. Messages that are not valid frames are answered
// (reportBadFrame, reportTooLarge), counted and skipped. Contract: the caller reads (c.reading).
func (c *Conn) readFrame(ctx context.Context) (Frame, error) {
	if c.fc != nil {
		f, err := c.fc.Receive(ctx)
		if err != nil {
			if ctx.Err() == nil {
				c.fail(err)
			}
			return Frame{}, err
		}
		f.Payload = append([]byte(nil), f.Payload...) // the FrameConn may reuse its buffer
		return f, nil
	}
	for {
		b, err := c.t.Receive(ctx)
		var tooLarge *transport.MessageTooLargeError
		if errors.As(err, &tooLarge) { // refused by the transport; the connection goes on
			c.rejected.Add(1)
			c.reportTooLarge(c.ctx, tooLarge)
			continue
		}
		if err != nil {
			return Frame{}, err
		}
		f, err := decodeMessage(b)
		if err != nil {
			c.rejected.Add(1)
			c.reportBadFrame(c.ctx, err)
			continue
		}
		return f, nil
	}
}

// readOnce reads one frame as the reader and routes it: an answer to a pending request
// wakes its waiter (an Ack nobody waits for is dropped); anything else is returned with
// mine set when direct (a Receive that found the queue empty), otherwise queued for
// Receive, or shed when InboxSize frames already wait (see Conn). It ends the caller's
// turn at reading. Contract: the caller set c.reading.
func (c *Conn) readOnce(ctx context.Context, direct bool) (f Frame, mine bool, err error) {
	f, err = c.readFrame(ctx)
	c.mu.Lock()
	c.reading = false
	if err != nil {
		c.mu.Unlock()
		return Frame{}, false, err
	}
	if c.routeAnswerLocked(f) {
		c.mu.Unlock()
		return Frame{}, false, nil
	}
	if direct {
		c.mu.Unlock()
		return f, true, nil
	}
	if c.queuedLocked() < c.queueCap {
		c.queueLocked(f)
		c.mu.Unlock()
		return Frame{}, false, nil
	}
	c.mu.Unlock()
	c.shedFrame(f)
	return Frame{}, false, nil
}

// shedFrame refuses f, a frame that answers no pending request and found the queue for
// Receive full: it is counted (ShedFrames) and its sender told (shedAnswer), best effort
// within a second, as reportBadFrame. Contract: the caller holds no lock.
func (c *Conn) shedFrame(f Frame) {
	c.shed.Add(1)
	r := shedAnswer(f, c.queueCap)
	if r == nil {
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, time.Second)
	defer cancel()
	_ = c.Send(ctx, r)
}

// shedAnswer is what tells the sender of f that f was shed (code overloaded): an Error
// with f's message id for a frame that awaits an answer, a StreamClose for a stream's
// chunk or close (the stream is over: a chunk lost mid-stream cannot be papered over),
// nil for a frame that awaits nothing (an Event, an answer to no pending request).
func shedAnswer(f Frame, inbox int) *Frame {
	text := fmt.Sprintf("mxp: %s not taken: %d received frames already wait for the receiver", f.Type, inbox)
	ep := ErrorPayload{Error: text, Code: CodeOverloaded}
	switch {
	case f.Type == TypeStreamChunk || f.Type == TypeStreamClose:
		var sid StreamID
		if f.Type == TypeStreamChunk {
			p, err := DecodeStreamChunk(f.Payload)
			if err != nil {
				return nil
			}
			sid = p.StreamID
		} else {
			p, err := DecodeStreamClose(f.Payload)
			if err != nil || p.Error != nil { // a failed stream's close: nothing to answer
				return nil
			}
			sid = p.StreamID
		}
		payload, err := (&StreamClosePayload{StreamID: sid, Error: &ep}).AppendPayload(nil)
		if err != nil {
			return nil
		}
		return &Frame{Type: TypeStreamClose, MessageID: f.MessageID, TraceID: f.TraceID, Payload: payload}
	case isAnswer(f.Type), f.Type == TypeEvent && !f.Flags.Has(FlagRequiresAck):
		return nil
	}
	payload, err := ep.AppendPayload(nil)
	if err != nil {
		return nil
	}
	return &Frame{Type: TypeError, MessageID: f.MessageID, TraceID: f.TraceID, Payload: payload}
}

// routeAnswerLocked delivers f to the request it answers and reports whether f was an
// answer that is now dealt with (delivered, or an Ack that nobody awaits).
func (c *Conn) routeAnswerLocked(f Frame) bool {
	if !isAnswer(f.Type) {
		return false
	}
	if w := c.pending[f.MessageID]; w != nil {
		delete(c.pending, f.MessageID) // each request is answered once
		w.f, w.got = f, true
		c.dropFollowerLocked(w)
		wake(w)
		return true
	}
	return f.Type == TypeAck // an Ack for a request already answered, or that awaits none
}

// queueLocked queues f for Receive and wakes a Receive waiter.
func (c *Conn) queueLocked(f Frame) {
	c.queue = append(c.queue, f)
	for i, w := range c.followers {
		if w.recv {
			c.followers = append(c.followers[:i], c.followers[i+1:]...)
			wake(w)
			return
		}
	}
}

func (c *Conn) queuedLocked() int { return len(c.queue) - c.queueHead }

func (c *Conn) popLocked() (Frame, bool) {
	if c.queueHead == len(c.queue) {
		return Frame{}, false
	}
	f := c.queue[c.queueHead]
	c.queue[c.queueHead] = Frame{}
	c.queueHead++
	if c.queueHead == len(c.queue) {
		c.queue, c.queueHead = c.queue[:0], 0
	}
	return f, true
}

func (c *Conn) dropFollowerLocked(w *waiter) {
	for i, x := range c.followers {
		if x == w {
			c.followers = append(c.followers[:i], c.followers[i+1:]...)
			return
		}
	}
}

// mayReadLocked reports whether a waiter may take its turn at reading now: nobody reads.
// A request's waiter reads even when the queue for Receive is full, so it always gets its
// answer; what it reads for Receive beyond InboxSize is shed (readOnce), so memory
// stays bounded. (A Receive waiter pops before it reads, so it never finds the queue
// full.)
func (c *Conn) mayReadLocked() bool {
	return !c.reading
}

// handOn gives the turn at reading to a waiting goroutine when nobody reads. Every
// waiter calls it on its way out, so waiters never all sleep while a frame is owed.
func (c *Conn) handOn() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reading {
		return
	}
	for i, w := range c.followers {
		if c.mayReadLocked() {
			c.followers = append(c.followers[:i], c.followers[i+1:]...)
			wake(w)
			return
		}
	}
}

// datagramLoop routes the transport's datagrams (Events and heartbeats that opted out of
// reliability) as readOnce routes messages. When the queue for Receive is full a datagram
// is dropped and counted (DroppedDatagrams): datagrams are unreliable by contract.
func (c *Conn) datagramLoop() {
	defer c.wg.Done()
	for {
		b, err := c.t.ReceiveDatagram(context.Background())
		if err != nil {
			return
		}
		f, err := decodeMessage(b)
		if err != nil {
			c.rejected.Add(1)
			c.reportBadFrame(c.ctx, err)
			continue
		}
		c.mu.Lock()
		if !c.routeAnswerLocked(f) {
			if c.queuedLocked() < c.queueCap {
				c.queueLocked(f)
			} else {
				c.droppedDgrm.Add(1)
			}
		}
		c.mu.Unlock()
	}
}

// DroppedDatagrams counts received datagrams dropped because InboxSize frames already
// waited for Receive.
func (c *Conn) DroppedDatagrams() uint64 { return c.droppedDgrm.Load() }

// ShedFrames counts received reliable frames shed because InboxSize frames already
// waited for Receive while a request read on for its answer (see Conn).
func (c *Conn) ShedFrames() uint64 { return c.shed.Load() }

// fail ends a Conn over a FrameConn whose Receive failed with err.
func (c *Conn) fail(err error) {
	c.mu.Lock()
	if c.failed == nil {
		c.failed = err
	}
	c.mu.Unlock()
	c.closeOnce.Do(func() { close(c.closed) })
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
func (c *Conn) Send(ctx context.Context, f *Frame) error {
	if c.fc != nil {
		select {
		case <-c.closed:
			return c.closedErr()
		default:
		}
		return c.fc.Send(ctx, f)
	}
	return sendFrame(ctx, c.t, f)
}

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
// Over a FrameConn it is Send.
func (c *Conn) SendDatagram(f *Frame) error {
	if c.fc != nil {
		return c.Send(context.Background(), f)
	}
	bp := bufPool.Get().(*[]byte)
	b, err := AppendFrame((*bp)[:0], f)
	if err == nil {
		err = c.t.SendDatagram(b)
	}
	*bp = b[:0]
	bufPool.Put(bp)
	return err
}

// Receive returns the next frame that is not the answer to a pending request, in order.
// Frames that arrived before the connection closed are returned before its error.
func (c *Conn) Receive(ctx context.Context) (Frame, error) {
	w := getWaiter(true)
	defer func() {
		c.mu.Lock()
		c.dropFollowerLocked(w)
		c.mu.Unlock()
		putWaiter(w)
		c.handOn()
	}()
	for {
		c.mu.Lock()
		if f, ok := c.popLocked(); ok {
			c.mu.Unlock()
			return f, nil
		}
		if c.mayReadLocked() {
			c.reading = true
			c.mu.Unlock()
			f, mine, err := c.readOnce(ctx, true)
			if err != nil {
				return Frame{}, c.readErr(ctx)
			}
			if mine {
				return f, nil
			}
			continue
		}
		if closed, err := c.follow(ctx, w); err != nil {
			return Frame{}, err
		} else if closed {
			c.mu.Lock()
			f, ok := c.popLocked()
			c.dropFollowerLocked(w)
			reading := c.reading
			c.mu.Unlock()
			if ok {
				return f, nil
			}
			if reading { // the reader sees the end itself
				return Frame{}, c.closedErr()
			}
		}
	}
}

// follow makes w wait, not reading, until it is woken (its answer or frame came, or it is
// its turn to read), ctx ends (its error) or the connection closes (closed). Contract:
// the caller holds mu, which follow releases.
func (c *Conn) follow(ctx context.Context, w *waiter) (closed bool, err error) {
	c.followers = append(c.followers, w)
	c.mu.Unlock()
	select {
	case <-w.ch:
		return false, nil
	case <-ctx.Done():
		return false, ctx.Err()
	case <-c.Done():
		return true, nil
	}
}

// readErr is what a waiter whose read failed returns: ctx's error, or why the connection
// closed.
func (c *Conn) readErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return c.closedErr()
}

// closedErr is why the connection closed, typed: it matches ErrConnClosed and, when the
// peer stopped answering or was refused (transport.ErrPeerUnreachable), CodeUnreachable.
func (c *Conn) closedErr() error {
	if c.fc != nil {
		c.mu.Lock()
		err := c.failed
		c.mu.Unlock()
		if err == nil || errors.Is(err, ErrConnClosed) {
			return ErrConnClosed
		}
		return fmt.Errorf("%w: %w", ErrConnClosed, err)
	}
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
// CodeUnreachable. Each Await must be matched by one EndAwait. A no-op over a FrameConn.
func (c *Conn) Await() {
	if c.t != nil {
		c.t.Await()
	}
}

// EndAwait ends one Await.
func (c *Conn) EndAwait() {
	if c.t != nil {
		c.t.EndAwait()
	}
}

// Call sends f (MessageID 0 means "assign one") and waits for the frame with the same
// message id that answers it: a Response, an Error (returned with a *RemoteError) or, for
// a frame with FlagRequiresAck that gets no Response, an Ack. When the connection dies
// meanwhile the Call fails at once: with an error matching CodeUnreachable when the peer
// stopped answering (see Await), ErrConnClosed otherwise. Request is another name for it.
func (c *Conn) Call(ctx context.Context, f *Frame) (Frame, error) {
	var p Pending // on the stack: a Call allocates no Pending
	if err := c.start(ctx, f, &p); err != nil {
		return Frame{}, err
	}
	return p.Wait(ctx)
}

// Request is Call (the name the edge's clients use).
func (c *Conn) Request(ctx context.Context, f *Frame) (Frame, error) { return c.Call(ctx, f) }

// Pending is a request sent and not yet answered (see Start).
type Pending struct {
	c  *Conn
	id uint64
	w  *waiter
}

// Start sends f (MessageID 0 means "assign one") and returns at once; Wait then waits for
// its answer. It lets a caller keep a window of requests in flight while sending them in
// order (stream chunks with FlagRequiresAck, for example). Every Pending must be waited
// for once.
func (c *Conn) Start(ctx context.Context, f *Frame) (*Pending, error) {
	p := new(Pending)
	if err := c.start(ctx, f, p); err != nil {
		return nil, err
	}
	return p, nil
}

// start registers f's message id, sends f and fills p (Start, Call).
func (c *Conn) start(ctx context.Context, f *Frame, p *Pending) error {
	if f.MessageID == 0 {
		f.MessageID = c.NextID()
	}
	w := getWaiter(false)
	c.mu.Lock()
	if _, dup := c.pending[f.MessageID]; dup {
		c.mu.Unlock()
		putWaiter(w)
		return errors.New("mxp: a call with this message id is already in flight")
	}
	c.pending[f.MessageID] = w
	c.mu.Unlock()
	c.Await()
	*p = Pending{c: c, id: f.MessageID, w: w}
	if err := c.Send(ctx, f); err != nil {
		p.end()
		return err
	}
	return nil
}

// end forgets the request and recycles its waiter. Contract: called once.
func (p *Pending) end() {
	c := p.c
	c.mu.Lock()
	if c.pending[p.id] == p.w {
		delete(c.pending, p.id)
	}
	c.dropFollowerLocked(p.w)
	c.mu.Unlock()
	putWaiter(p.w)
	c.EndAwait()
	c.handOn()
}

// Wait waits for the answer (see Call). It must be called once.
func (p *Pending) Wait(ctx context.Context) (Frame, error) {
	defer p.end()
	c, w := p.c, p.w
	for {
		c.mu.Lock()
		if w.got {
			r := w.f
			c.mu.Unlock()
			if r.Type == TypeError {
				ep, err := DecodeErrorPayload(r.Payload)
				if err != nil {
					return r, &RemoteError{Code: CodeInvalidPayload, Message: "unreadable Error payload: " + err.Error()}
				}
				return r, ep.Err()
			}
			return r, nil
		}
		if c.mayReadLocked() {
			c.reading = true
			c.mu.Unlock()
			if _, _, err := c.readOnce(ctx, false); err != nil {
				return Frame{}, c.readErr(ctx)
			}
			continue
		}
		if closed, err := c.follow(ctx, w); err != nil {
			return Frame{}, err
		} else if closed {
			c.mu.Lock()
			got := w.got
			c.mu.Unlock()
			if !got {
				return Frame{}, c.closedErr()
			}
		}
	}
}

// PeerKey is the peer's authenticated public key (zero over a FrameConn).
func (c *Conn) PeerKey() PublicKey {
	if c.t == nil {
		return PublicKey{}
	}
	return c.t.PeerKey()
}

// addresses is what a Conn has of its connection's addresses: the transport's, or the
// FrameConn's when it tells them.
type addresses interface {
	LocalAddr() net.Addr
	RemoteAddr() net.Addr
}

func (c *Conn) addresses() addresses {
	if c.t != nil {
		return c.t
	}
	if a, ok := c.fc.(addresses); ok {
		return a
	}
	return noAddresses{}
}

type noAddresses struct{}

func (noAddresses) LocalAddr() net.Addr  { return nil }
func (noAddresses) RemoteAddr() net.Addr { return nil }

// RemoteAddr is the peer's address (nil over a FrameConn that does not tell).
func (c *Conn) RemoteAddr() net.Addr { return c.addresses().RemoteAddr() }

// LocalAddr is the local socket address (nil over a FrameConn that does not tell).
func (c *Conn) LocalAddr() net.Addr { return c.addresses().LocalAddr() }

// Stats reports RTT, loss and byte counters of the connection (zero over a FrameConn).
func (c *Conn) Stats() transport.Stats {
	if c.t == nil {
		return transport.Stats{}
	}
	return c.t.Stats()
}

// RejectedFrames counts received messages that were not valid MXP frames: each was
// dropped and answered with an Error frame (message id 0) naming the fault.
func (c *Conn) RejectedFrames() uint64 { return c.rejected.Load() }

// Done is closed when the connection closes.
func (c *Conn) Done() <-chan struct{} {
	if c.t == nil {
		return c.closed
	}
	return c.t.Done()
}

// Err is why the connection closed (see Call), or nil while it is open.
func (c *Conn) Err() error {
	select {
	case <-c.Done():
		return c.closedErr()
	default:
		return nil
	}
}

// Close flushes sent frames (bounded by the transport's Linger), closes the connection
// and waits for its goroutines.
func (c *Conn) Close() error {
	var err error
	if c.fc != nil {
		c.mu.Lock()
		if c.failed == nil {
			c.failed = ErrConnClosed
		}
		c.mu.Unlock()
		c.closeOnce.Do(func() { close(c.closed) })
		err = c.fc.Close()
	} else {
		err = c.t.Close()
	}
	c.cancel()
	c.wg.Wait()
	return err
}
