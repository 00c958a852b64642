package transport

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
)

// Conn is one secure connection: reliable ordered messages and unreliable datagrams to
// one authenticated peer. It is safe for concurrent use.
type Conn struct {
	ep       *endpoint
	cfg      *Config
	listener *Listener // nil on a dialled Conn (which owns ep)
	peer     peerKeys
	connID   uint64
	isClient bool
	// Responder: the source that created the connection and whether it is still unconfirmed
	// (admission.go); guarded by listener.mu.
	source       netip.Addr
	pendingAdmit bool

	mu       sync.Mutex
	remote   netip.AddrPort
	remoteUA *net.UDPAddr // remote as the batch writer wants it
	current  *keypair     // sends; receives
	previous *keypair     // receives only, until it expires or is replaced
	next     *keypair     // responder: derived from a rekey initiation, not yet confirmed
	pn       uint64       // next packet number (the AEAD counter; never reused on this connection)
	created  time.Time
	accepted bool // responder: delivered to Accept

	hs hsState // initiator handshake in progress

	snd        sendStream
	rcv        recvStream
	recvPNs    rangeSet  // received packet numbers, for ACK frames
	ackQueue   int       // ack-eliciting packets received since the last ACK sent
	ackDue     time.Time // zero: no ACK owed
	pingDue    bool
	maxDataDue bool
	closeDue   *CloseError

	sent          sentList
	largestAcked  uint64
	anyAcked      bool
	lastEliciting time.Time // when the last ack-eliciting packet was sent
	now           time.Time // time of the packet being processed (read loop)
	ackScratch    ackFrame  // parsed ACK frame (read loop; a field so that parsing does not allocate)
	rtt           rttEstimator
	cc            newReno
	reorder       reorderState
	rtoBackoff    uint
	probes        int // packets that may go out past the congestion window after a timeout
	lossTime      time.Time

	dgramOut [][]byte
	// The receive queues have their own lock so that a reader taking a message does not
	// contend with the read loop, which holds mu while it processes a batch.
	inMu       sync.Mutex
	dgramIn    [][]byte        // guarded by inMu
	msgIn      []inMessage     // guarded by inMu
	msgInHead  int             // guarded by inMu
	wakeMsg    bool            // read loop: wake message readers after the batch (guarded by mu)
	wakeDgram  bool            // ... and datagram readers
	handlerCtx context.Context // OnMessage's and OnDatagram's ctx: ends when the connection closes
	cancelCtx  context.CancelFunc
	consumed   atomic.Uint64 // stream bytes of messages the application has taken
	advertised atomic.Uint64 // the flow-control limit last advertised (mirror of rcv.maxData)
	held       atomic.Int64  // bytes charged to the endpoint's receive budget (heldClosed once released)

	lastSend, lastRecv time.Time
	unanswered         time.Time    // when the first ack-eliciting packet since lastRecv was sent (zero: none; see liveness.go)
	deadProbes         int          // probes sent since unanswered started (see liveness.go)
	stallTouched       bool         // in the stall helper's list (stall.go); guarded by the read token
	lastProbe          time.Time    // when the last of them was sent
	awaiting           atomic.Int32 // outstanding Awaits: the application waits for an answer
	timer              *time.Timer
	timerAt            time.Time

	closed        bool
	closeErr      error
	done          chan struct{} // closed when the connection is closed
	readable      chan struct{} // signalled when a message arrives
	dgramReadable chan struct{}
	writable      chan struct{} // signalled when send buffer space frees up
	acked         chan struct{} // signalled when the send stream is fully acknowledged
	hsDone        chan struct{} // initiator: the first handshake completed

	tx      *txBatch // held only while flushLocked runs (see txBatch)
	txNonce [12]byte // AEAD nonce buffers (fields, so that sealing does not allocate)
	rxNonce [12]byte
	// rxRefused: a STREAM frame of the packet being processed did not fit in the receive
	// budget, so the packet is not acknowledged (read loop, c.mu held).
	rxRefused   bool
	recvRetryAt time.Time // when a reservation that did not fit is retried (zero: none waits; recvbudget.go)
	stats       connCounters
}

func newConn(ep *endpoint, cfg *Config, peer peerKeys, connID uint64, remote netip.AddrPort, client bool, now time.Time) *Conn {
	c := &Conn{
		ep: ep, cfg: cfg, peer: peer, connID: connID, isClient: client,
		remote: remote, remoteUA: net.UDPAddrFromAddrPort(remote),
		created: now, lastRecv: now, lastSend: now,
		done: make(chan struct{}), readable: make(chan struct{}, 1), dgramReadable: make(chan struct{}, 1),
		writable: make(chan struct{}, 1), acked: make(chan struct{}, 1), hsDone: make(chan struct{}),
	}
	c.snd.init(cfg)
	c.rcv.init(cfg)
	c.advertised.Store(c.rcv.maxData)
	c.rtt.init()
	c.reorder.init()
	c.cc.init(cfg.MaxPacketSize)
	if ep.connected {
		c.remoteUA = nil // sendmmsg on a connected socket takes no address
	}
	c.timer = time.AfterFunc(time.Hour, c.onTimer)
	return c
}

// PeerKey is the peer's static public key (its identity, authenticated by the handshake).
func (c *Conn) PeerKey() PublicKey { return c.peer.public }

// RemoteAddr is the peer's current address (it follows the peer when it roams).
func (c *Conn) RemoteAddr() net.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	return net.UDPAddrFromAddrPort(c.remote)
}

// LocalAddr is the local socket's address.
func (c *Conn) LocalAddr() net.Addr { return c.ep.udp.LocalAddr() }

// MaxDatagramSize is the largest datagram SendDatagram accepts.
func (c *Conn) MaxDatagramSize() int { return c.cfg.maxDatagram() }

// Done is closed when the connection is closed; Err then says why.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the connection closed, or nil while it is open.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeErr
}

// Send queues msg (copied) for reliable, ordered, exactly-once delivery. It blocks while
// the send buffer is full, until ctx ends or the connection closes.
func (c *Conn) Send(ctx context.Context, msg []byte) error { return c.send(ctx, msg, true) }

// SendLater queues msg exactly as Send does but leaves its transmission to the next Flush
// (or Send, or the ACKs and timers that send queued data anyway), so that a burst of
// messages to one peer leaves in full packets and one system call. Unless Flush follows,
// msg may wait: a caller of SendLater must call Flush when its burst ends.
func (c *Conn) SendLater(ctx context.Context, msg []byte) error { return c.send(ctx, msg, false) }

// TrySend is Send without the wait: when the send buffer has no room for msg it returns
// ErrSendBufferFull at once and queues nothing, so that a goroutine serving many
// connections can hand a message to one that has room without ever being held up by
// one that has none (and queue it elsewhere, for a goroutine that may wait).
func (c *Conn) TrySend(msg []byte) error {
	if len(msg) > MaxMessageSize {
		return ErrMessageTooLarge
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.closeErr
	}
	if !c.snd.hasRoom(len(msg)) {
		return ErrSendBufferFull
	}
	c.snd.push(msg)
	c.stats.messagesSent++
	if c.shouldFlushLocked(true) {
		c.flushLocked(time.Now())
	}
	return nil
}

// Flush transmits what SendLater queued, as far as the congestion window and the peer's
// flow control allow (the rest goes as ACKs open them).
func (c *Conn) Flush() {
	c.mu.Lock()
	if !c.closed {
		c.flushLocked(time.Now())
	}
	c.mu.Unlock()
}

func (c *Conn) send(ctx context.Context, msg []byte, flush bool) error {
	if len(msg) > MaxMessageSize {
		return ErrMessageTooLarge
	}
	for {
		c.mu.Lock()
		if c.closed {
			err := c.closeErr
			c.mu.Unlock()
			return err
		}
		if c.snd.hasRoom(len(msg)) {
			c.snd.push(msg)
			c.stats.messagesSent++
			if c.shouldFlushLocked(flush) {
				c.flushLocked(time.Now())
			}
			c.mu.Unlock()
			return nil
		}
		c.mu.Unlock()
		if onHandlerLoop() {
			// Called from an OnMessage: waiting here could stop the reading of the ACKs
			// that free the buffer (this endpoint's, or a relaying peer's).
			return ErrSendBufferFull
		}
		select {
		case <-c.writable:
		case <-c.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// shouldFlushLocked decides whether Send transmits at once. While at least CorkInFlight
// packets are in flight and less than a packet of new data waits, it does not: the ACKs
// of the packets in flight will clock the data out in full packets (Nagle's rule, applied
// only to a busy connection so that request/response traffic is never held back).
//
// With flush false (SendLater) it transmits only once a full packet of new data waits.
func (c *Conn) shouldFlushLocked(flush bool) bool {
	if flush && c.cc.inFlight < CorkInFlight*c.cfg.MaxPacketSize {
		return true
	}
	return c.snd.writeOff-c.snd.sendOff >= uint64(c.cfg.MaxPacketSize)
}

// Receive returns the next reliable message, in order. It blocks until one arrives,
// ctx ends or the connection closes. The returned slice belongs to the caller.
func (c *Conn) Receive(ctx context.Context) ([]byte, error) {
	if c.cfg.OnMessage != nil {
		return nil, ErrOnMessage
	}
	for {
		if m, ok := c.takeMessage(); ok {
			return m.result(c)
		}
		select {
		case <-c.done:
			if m, ok := c.takeMessage(); ok {
				return m.result(c)
			}
			return nil, c.Err()
		default:
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		direct := c.readDirect(ctx)
		if direct == readDone {
			continue
		}
		select {
		case <-c.readable:
		case <-c.done:
		case <-ctx.Done():
		}
		if direct == readWaiter {
			c.endWait()
		}
	}
}

// inMessage is a received message waiting for the application, or (tooLarge > 0) the
// notice of a refused one: b then holds its prefix.
type inMessage struct {
	b        []byte
	tooLarge uint64
	limit    uint64
}

// streamBytes is the stream bytes the message took (its credit for flow control).
func (m *inMessage) streamBytes() int {
	if m.tooLarge > 0 {
		return varintLen(m.tooLarge) + int(m.tooLarge)
	}
	return varintLen(uint64(len(m.b))) + len(m.b)
}

// heldBytes is what it is charged against the receive budget.
func (m *inMessage) heldBytes() int {
	if m.tooLarge > 0 {
		return varintLen(m.tooLarge) + len(m.b)
	}
	return varintLen(uint64(len(m.b))) + len(m.b)
}

// result is what Receive returns for it.
func (m *inMessage) result(c *Conn) ([]byte, error) {
	if m.tooLarge > 0 {
		return nil, &MessageTooLargeError{Prefix: m.b, Size: m.tooLarge, Limit: m.limit}
	}
	return m.b, nil
}

// takeMessage dequeues the next received message, if any, and credits it (flow control
// and receive budget).
func (c *Conn) takeMessage() (inMessage, bool) {
	c.inMu.Lock()
	if c.msgInHead == len(c.msgIn) {
		c.inMu.Unlock()
		return inMessage{}, false
	}
	m := c.msgIn[c.msgInHead]
	c.msgIn[c.msgInHead] = inMessage{}
	c.msgInHead++
	if c.msgInHead == len(c.msgIn) {
		c.msgIn, c.msgInHead = c.msgIn[:0], 0
	} else {
		signal(c.readable)
	}
	c.inMu.Unlock()
	c.consumedMessage(&m)
	return m, true
}

// consumedMessage credits the peer with the stream bytes of a message the application
// took, and advertises a new limit once it moved by 1/8 of the window; it returns the
// message's bytes to the receive budget.
func (c *Conn) consumedMessage(m *inMessage) {
	c.releaseRecv(m.heldBytes())
	total := c.consumed.Add(uint64(m.streamBytes()))
	if total+uint64(c.cfg.RecvWindow)-c.advertised.Load() < uint64(c.cfg.RecvWindow)/8 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rcv.consume(total) {
		c.advertised.Store(c.rcv.maxData)
		c.maxDataDue = true
		c.flushLocked(time.Now())
	}
}

// SendDatagram sends msg once, unreliably and unordered; it may be lost or dropped.
func (c *Conn) SendDatagram(msg []byte) error {
	if len(msg) > c.cfg.maxDatagram() {
		return ErrDatagramTooLarge
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.closeErr
	}
	if len(c.dgramOut) >= c.cfg.DatagramQueue {
		c.stats.datagramsDropped++
		c.ep.counters.datagramsDroppedOut.Add(1)
		return nil
	}
	c.dgramOut = append(c.dgramOut, append([]byte(nil), msg...))
	c.stats.datagramsSent++
	c.flushLocked(time.Now())
	return nil
}

// ReceiveDatagram returns the next datagram; with Config.OnDatagram set it returns
// ErrOnDatagram (datagrams go there).
func (c *Conn) ReceiveDatagram(ctx context.Context) ([]byte, error) {
	if c.cfg.OnDatagram != nil {
		return nil, ErrOnDatagram
	}
	for {
		c.inMu.Lock()
		if len(c.dgramIn) > 0 {
			d := c.dgramIn[0]
			c.dgramIn[0] = nil
			c.dgramIn = c.dgramIn[1:]
			if len(c.dgramIn) > 0 {
				signal(c.dgramReadable)
			}
			c.inMu.Unlock()
			c.releaseRecv(len(d))
			return d, nil
		}
		c.inMu.Unlock()
		select {
		case <-c.dgramReadable:
			continue
		case <-c.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		c.inMu.Lock()
		empty := len(c.dgramIn) == 0
		c.inMu.Unlock()
		if empty {
			return nil, c.Err()
		}
	}
}

// Close waits up to Config.Linger for sent messages to be acknowledged, tells the peer
// and releases everything. It is idempotent.
func (c *Conn) Close() error {
	if onHandlerLoop() {
		// Called from an OnMessage: lingering could wait for ACKs that only the caller's
		// goroutine can read.
		c.closeNow(&CloseError{Code: CloseNormal, Reason: "closed"}, true)
		return nil
	}
	deadline := time.NewTimer(c.cfg.Linger)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		if c.closed || c.snd.allAcked() {
			c.mu.Unlock()
			break
		}
		c.mu.Unlock()
		select {
		case <-c.acked:
			continue
		case <-c.done:
		case <-deadline.C:
		}
		break
	}
	c.closeNow(&CloseError{Code: CloseNormal, Reason: "closed"}, true)
	return nil
}

// closeNow ends the connection with err; it sends a CLOSE frame when notify is set.
// For a dialled Conn it also waits for the socket's read loop to end.
func (c *Conn) closeNow(err *CloseError, notify bool) {
	c.mu.Lock()
	c.closeLocked(err, notify)
	c.mu.Unlock()
	if c.listener == nil && !c.ep.onReadLoop() {
		<-c.ep.done // (from OnMessage, the caller is the read loop that must end)
	}
}

// closeLocked ends the connection. Contract: the only place that sets closed; called with
// c.mu held, from any goroutine including the read loop; safe to call more than once.
func (c *Conn) closeLocked(err *CloseError, notify bool) {
	if c.closed {
		return
	}
	if notify && c.current != nil && !err.Remote {
		c.closeDue = err
		c.flushLocked(time.Now())
	}
	c.closed = true
	c.closeErr = err
	c.timer.Stop()
	c.releaseAllRecv()
	if c.cancelCtx != nil {
		c.cancelCtx()
	}
	for _, kp := range []*keypair{c.current, c.previous, c.next} {
		if kp != nil {
			c.ep.index.remove(kp.localIndex)
		}
	}
	if c.hs.index != 0 {
		c.ep.index.remove(c.hs.index)
	}
	close(c.done)
	if c.listener != nil {
		c.listener.removeConn(c)
	} else {
		c.ep.shutdown()
	}
}

// closeWith closes after an error the peer caused (a protocol violation); c.mu is held.
func (c *Conn) closeWith(code uint64, reason string, cause error) {
	c.closeLocked(&CloseError{Code: code, Reason: reason + ": " + cause.Error()}, true)
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// txBatch is the packet buffers of one sendmmsg call. The buffers are consecutive slices
// of one slab, each exactly MaxPacketSize long, so that a run of full-size packets is
// already laid out for one GSO send. A connection borrows one for the length of a flush
// (from its endpoint's txPool), so an idle connection holds none: a batch is BatchSize
// packets (~80 KB at the default packet size), which 10,000 idle agents' connections
// would otherwise keep.
type txBatch struct {
	slab   []byte
	stride int
	pool   *sync.Pool // where it returns (txPoolFor)
	bufs   [BatchSize][]byte
	msgs   [BatchSize]ipv4.Message
	n      int
}

// txPools holds free send batches, one sync.Pool per packet size.
var txPools sync.Map // int → *sync.Pool

// txPoolFor returns the pool of send batches for packets of size bytes (endpoints look it
// up once, as they are created).
func txPoolFor(size int) *sync.Pool {
	p, ok := txPools.Load(size)
	if !ok {
		var pool *sync.Pool
		pool = &sync.Pool{New: func() any {
			t := &txBatch{pool: pool}
			t.init(size)
			return t
		}}
		p, _ = txPools.LoadOrStore(size, pool)
	}
	return p.(*sync.Pool)
}

// putTxBatch returns an empty batch (n == 0) to its pool.
func putTxBatch(t *txBatch) { t.pool.Put(t) }

func (t *txBatch) init(size int) {
	t.stride = size
	t.slab = make([]byte, BatchSize*size)
	for i := range t.bufs {
		t.bufs[i] = t.slab[i*size : i*size : (i+1)*size]
		t.msgs[i].Buffers = make([][]byte, 1)
	}
}
