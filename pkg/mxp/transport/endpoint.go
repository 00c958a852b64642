package transport

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// batchConn is what ipv4.PacketConn and ipv6.PacketConn share: sendmmsg and recvmmsg.
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// endpoint owns one UDP socket: it reads packets in batches, demultiplexes them by type
// and receiver index, and writes batches for its connections. A Listener has one
// endpoint for all its connections; a dialled Conn has its own.
type endpoint struct {
	udp      *net.UDPConn
	batch    batchConn
	local    *staticIdentity
	cfg      *Config
	index    *indexTable
	cookies  *cookieChecker
	listener *Listener // nil on a client endpoint

	writeMu    sync.Mutex  // serializes WriteBatch calls
	connected  bool        // a client socket connected to its server: writes carry no address
	gso        atomic.Bool // the kernel accepts UDP_SEGMENT (turned off at the first refusal)
	closed     atomic.Bool
	closing    chan struct{} // closed by shutdown
	done       chan struct{} // closed when the read loop has returned
	counters   endpointCounters
	recv       recvBudget   // bytes its connections hold (Config.RecvBudget)
	maxMessage atomic.Int64 // the application's message limit (Config.MaxMessageSize, SetMaxMessageSize)

	// Reading. Whoever holds the read token reads and processes the socket's packets: the
	// read loop, or (client endpoints, see readDirect) a goroutine blocked in Receive.
	token   atomic.Bool
	txPool  *sync.Pool  // send batches for cfg.MaxPacketSize
	rd      batchReader // guarded by token
	touched []*Conn     // guarded by token: connections that got data in this batch
	lend    lendState
	loopG   atomic.Uint64 // the read loop's goroutine id, when OnMessage or OnDatagram is set
	stall   stallGuard    // reads while OnMessage/OnDatagram handlers stall the read loop (stall.go)
}

// onReadLoop reports whether the caller runs on this endpoint's read loop, i.e. inside its
// OnMessage or OnDatagram (the only user code that runs there). Only with one of them set; it costs a
// microsecond, and is asked only where waiting for the read loop would deadlock.
func (ep *endpoint) onReadLoop() bool {
	return ep.cfg.handlersOnLoop() && ep.loopG.Load() == goroutineID()
}

// handlerLoops holds the goroutine ids of the read loops that run an OnMessage or an
// OnDatagram, of every
// endpoint: a handler must not wait for buffer space or a linger on any connection (one
// of another endpoint's could wait on the caller's own read loop, through a peer that
// relays), and onHandlerLoop tells Send and Close that it is one.
var (
	handlerLoops     sync.Map // goroutine id → struct{}
	handlerLoopCount atomic.Int32
)

// onHandlerLoop reports whether the caller is the read loop of any endpoint with an
// OnMessage; without such an endpoint in the process it costs an atomic load.
func onHandlerLoop() bool {
	if handlerLoopCount.Load() == 0 {
		return false
	}
	_, ok := handlerLoops.Load(goroutineID())
	return ok
}

// goroutineID is the calling goroutine's id, parsed from the header of its stack trace.
func goroutineID() uint64 {
	var b [64]byte
	s := b[:runtime.Stack(b[:], false)]
	s = bytes.TrimPrefix(s, []byte("goroutine "))
	if i := bytes.IndexByte(s, ' '); i >= 0 {
		s = s[:i]
	}
	id, _ := strconv.ParseUint(string(s), 10, 64)
	return id
}

// endpointCounters are the socket-level counters (attacks and drops), read via Stats.
// Each counts one thing: a packet is counted by the first check it fails.
type endpointCounters struct {
	packetsIn, bytesIn        atomic.Uint64
	malformed, unknownIndex   atomic.Uint64
	authFailed                atomic.Uint64 // handshake packets (initiation, response, cookie reply)
	dataAuthFailed, replayed  atomic.Uint64 // data packets
	handshakesIn, cookiesSent atomic.Uint64
	mac1Failed, mac2Missing   atomic.Uint64
	initReplayed, refused     atomic.Uint64
	handshakesDone, hsDropped atomic.Uint64

	rateLimitedSource, rateLimitedKey        atomic.Uint64 // proven initiations over a token bucket
	refusedMaxConns, refusedMaxPending       atomic.Uint64 // new connections over a Listener-wide cap
	refusedSourceConns, refusedSourcePending atomic.Uint64 // ... over a per-source cap
	datagramsDroppedIn, datagramsDroppedOut  atomic.Uint64 // datagram queue full (receive, send)

	tooLarge, recvBudgetDrops atomic.Uint64 // messages refused by size; data dropped over the receive budget
	recvEvictions             atomic.Uint64 // connections closed over a stalled receive budget
}

// newEndpoint opens the socket: bound to laddr (a listener), or connected to raddr (a
// client: the kernel then filters other sources and caches the route).
func newEndpoint(network string, laddr, raddr *net.UDPAddr, cfg *Config) (*endpoint, error) {
	var udp *net.UDPConn
	var err error
	if raddr != nil {
		udp, err = net.DialUDP(network, laddr, raddr)
	} else {
		udp, err = net.ListenUDP(network, laddr)
	}
	if err != nil {
		return nil, err
	}
	_ = udp.SetReadBuffer(cfg.SocketBuffer)
	_ = udp.SetWriteBuffer(cfg.SocketBuffer)
	ep := &endpoint{udp: udp, cfg: cfg, index: newIndexTable(), closing: make(chan struct{}), done: make(chan struct{}), connected: raddr != nil}
	ep.recv.limit = int64(cfg.RecvBudget)
	ep.maxMessage.Store(int64(cfg.MaxMessageSize))
	if la := udp.LocalAddr().(*net.UDPAddr); la.IP.To4() != nil && network != "udp6" {
		ep.batch = ipv4.NewPacketConn(udp)
	} else {
		ep.batch = ipv6.NewPacketConn(udp)
	}
	ep.gso.Store(gsoSupported && !cfg.DisableGSO)
	ep.local = newStaticIdentity(cfg.PrivateKey)
	ep.cookies = newCookieChecker(ep.local)
	ep.txPool = txPoolFor(cfg.MaxPacketSize)
	ep.rd = newBatchReader(ep)
	ep.touched = make([]*Conn, 0, BatchSize)
	ep.lend.init(ep)
	return ep, nil
}

// start runs the read loop; it returns when the socket is closed.
func (ep *endpoint) start() {
	if ep.cfg.handlersOnLoop() {
		ep.stall.timer = time.AfterFunc(time.Hour, ep.handlersStalled)
		ep.stall.timer.Stop()
	}
	go ep.readLoop()
}

// close closes the socket and waits for the read loop to end.
func (ep *endpoint) close() {
	ep.shutdown()
	<-ep.done
}

// shutdown closes the socket without waiting; the read loop then returns. Safe to call
// from the read loop itself and more than once.
func (ep *endpoint) shutdown() {
	if !ep.closed.Swap(true) {
		close(ep.closing)
		if ep.lend.timer != nil {
			ep.lend.timer.Stop()
		}
		ep.udp.Close()
	}
}

// writeBatch sends msgs with sendmmsg, retrying the remainder after a partial write.
// Errors are dropped packets (UDP is lossy; reliability recovers).
func (ep *endpoint) writeBatch(msgs []ipv4.Message) {
	ep.writeMu.Lock()
	defer ep.writeMu.Unlock()
	for len(msgs) > 0 {
		n, err := ep.batch.WriteBatch(msgs, 0)
		if err != nil {
			if n <= 0 {
				n = 1 // skip the packet the kernel refused
			}
		}
		msgs = msgs[n:]
	}
}

// writeGSO sends b as segments of segSize bytes in one sendmsg (UDP GSO). It reports
// false, and turns GSO off, when the kernel refuses.
func (ep *endpoint) writeGSO(b []byte, segSize int, to netip.AddrPort) bool {
	oob := gsoControl(segSize)
	if ep.connected {
		to = netip.AddrPort{}
	}
	ep.writeMu.Lock()
	_, _, err := ep.udp.WriteMsgUDPAddrPort(b, oob[:], to)
	ep.writeMu.Unlock()
	if err != nil && !errors.Is(err, net.ErrClosed) && gsoRefused(err) {
		ep.gso.Store(false)
		return false
	}
	return true
}

// writeOne sends one data packet with sendmsg.
func (ep *endpoint) writeOne(b []byte, to netip.AddrPort) {
	ep.writeMu.Lock()
	ep.write(b, to)
	ep.writeMu.Unlock()
}

// write sends b to to, or to the connected peer.
func (ep *endpoint) write(b []byte, to netip.AddrPort) {
	if ep.connected {
		_, _ = ep.udp.Write(b)
	} else {
		_, _ = ep.udp.WriteToUDPAddrPort(b, to)
	}
}

// writeTo sends one packet (handshake path).
func (ep *endpoint) writeTo(b []byte, to netip.AddrPort) { ep.write(b, to) }

// readLoop reads batches of packets until the socket is closed. It holds the read token
// except while a client endpoint lends it to Receive callers (see readDirect).
func (ep *endpoint) readLoop() {
	defer close(ep.done)
	if ep.cfg.handlersOnLoop() {
		id := goroutineID()
		ep.loopG.Store(id)
		handlerLoops.Store(id, struct{}{})
		handlerLoopCount.Add(1)
		defer func() {
			handlerLoops.Delete(id)
			handlerLoopCount.Add(-1)
		}()
	}
	for {
		if !ep.token.CompareAndSwap(false, true) {
			// A Receive caller reads the socket; the lend timer wakes this loop when the
			// token stays free.
			select {
			case <-ep.lend.wake:
				continue
			case <-ep.closing:
				return
			}
		}
		woke, err := ep.readBatch()
		if err != nil {
			ep.token.Store(false)
			if ep.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				ep.readFailed(err)
				time.Sleep(time.Millisecond) // transient error (e.g. ICMP unreachable): keep reading
			}
			continue
		}
		if ep.lend.waiters.Load() > 0 {
			// A Receive caller found the token taken and waits: from now on it reads the
			// socket itself (releaseToken wakes it).
			ep.lend.lends.Add(1)
			ep.releaseToken()
			select {
			case <-ep.lend.wake:
			case <-ep.closing:
				return
			}
			continue
		}
		ep.token.Store(false)
		if woke {
			// Let the reader just woken run now, before this loop's next (probably empty)
			// recvmmsg: it takes a system call off the request/response critical path.
			runtime.Gosched()
		}
	}
}

// readBatch reads one batch of packets (blocking until at least one arrives) and processes
// it; it reports whether a reader was woken. Contract: the caller holds the read token.
func (ep *endpoint) readBatch() (woke bool, err error) {
	n, err := ep.rd.read()
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// A Receive caller's context ended while it read (see readDirect); a deadline
			// it left behind must not stop the next reader.
			_ = ep.udp.SetReadDeadline(time.Time{})
		}
		return false, err
	}
	now := time.Now()
	for i := 0; i < n; i++ {
		b, src, ok := ep.rd.packet(i)
		if !ok {
			continue
		}
		if c := ep.handlePacket(b, src, now); c != nil && !containsConn(ep.touched, c) {
			ep.touched = append(ep.touched, c)
		}
	}
	handlers := ep.cfg.handlersOnLoop()
	if handlers {
		ep.beginHandlers(now)
	}
	for i, c := range ep.touched {
		woke = c.afterReceiveBatch(now) || woke
		ep.touched[i] = nil
	}
	ep.touched = ep.touched[:0]
	for handlers {
		// A helper read while the handlers stalled: the messages it received wait for
		// their handlers (which may stall in turn).
		more := ep.endHandlers()
		if len(more) == 0 {
			break
		}
		now = time.Now()
		ep.beginHandlers(now)
		for _, c := range more {
			c.stallTouched = false
			woke = c.afterReceiveBatch(now) || woke
		}
	}
	return woke, nil
}

// batchReader reads up to BatchSize datagrams per system call.
type batchReader interface {
	read() (int, error)
	packet(i int) (b []byte, src netip.AddrPort, ok bool)
}

// xnetReader reads with golang.org/x/net's ReadBatch (recvmmsg); it allocates the source
// address of each packet, so Linux uses rawReader instead.
type xnetReader struct {
	batch batchConn
	msgs  []ipv4.Message
	bufs  [][]byte
}

func newXnetReader(ep *endpoint) *xnetReader {
	r := &xnetReader{batch: ep.batch, msgs: make([]ipv4.Message, BatchSize), bufs: make([][]byte, BatchSize)}
	for i := range r.msgs {
		r.bufs[i] = make([]byte, rxBufSize)
		r.msgs[i].Buffers = [][]byte{r.bufs[i]}
	}
	return r
}

func (r *xnetReader) read() (int, error) { return r.batch.ReadBatch(r.msgs, 0) }

func (r *xnetReader) packet(i int) ([]byte, netip.AddrPort, bool) {
	ua, ok := r.msgs[i].Addr.(*net.UDPAddr)
	if !ok {
		return nil, netip.AddrPort{}, false
	}
	return r.bufs[i][:r.msgs[i].N], netipUnmap(ua.AddrPort()), true
}

// rxBufSize is the receive buffer per packet; longer datagrams are truncated (and then
// fail authentication), as no valid packet exceeds MaxPacketSizeLimit.
const rxBufSize = 2048

func containsConn(cs []*Conn, c *Conn) bool {
	for _, x := range cs {
		if x == c {
			return true
		}
	}
	return false
}

// handlePacket dispatches one datagram; it returns the connection that received data,
// if any, so that ACKs can be sent once per batch.
func (ep *endpoint) handlePacket(b []byte, src netip.AddrPort, now time.Time) *Conn {
	ep.counters.packetsIn.Add(1)
	ep.counters.bytesIn.Add(uint64(len(b)))
	if len(b) < 4 {
		ep.counters.malformed.Add(1)
		return nil
	}
	switch b[0] {
	case PacketData:
		h, ok := parseDataHeader(b)
		if !ok {
			ep.counters.malformed.Add(1)
			return nil
		}
		e, ok := ep.index.lookup(h.receiver)
		if !ok || e.kp == nil {
			ep.counters.unknownIndex.Add(1)
			return nil
		}
		if e.conn.receiveData(e.kp, h, b, src, now) {
			return e.conn
		}
		return nil
	case PacketInitiation:
		ep.counters.handshakesIn.Add(1)
		if ep.listener == nil {
			ep.counters.malformed.Add(1)
			return nil
		}
		ep.listener.handleInitiation(b, src, now)
	case PacketResponse:
		ep.counters.handshakesIn.Add(1)
		_, recv, err := parseResponseHeader(b)
		if err != nil {
			ep.counters.malformed.Add(1)
			return nil
		}
		if e, ok := ep.index.lookup(recv); ok && e.kp == nil {
			e.conn.handleResponse(recv, b, src, now)
			return e.conn
		}
		ep.counters.unknownIndex.Add(1)
	case PacketCookieReply:
		recv, err := parseCookieReply(b)
		if err != nil {
			ep.counters.malformed.Add(1)
			return nil
		}
		if e, ok := ep.index.lookup(recv); ok && e.kp == nil {
			e.conn.handleCookieReply(b, now)
			return nil
		}
		ep.counters.unknownIndex.Add(1)
	default:
		ep.counters.malformed.Add(1)
	}
	return nil
}

func netipUnmap(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}
