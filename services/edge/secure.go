package edge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/mxp-mesh/mesh/pkg/mxp/transport"
)

// SecureTransport serves MXP over the secure UDP transport (pkg/mxp/transport): each
// reliable message is one frame; a peer's identity is its static public key.
//
// A connection costs one goroutine, the one that reads its messages (Handler.Frame may
// block there, pushing back on that peer alone); its datagrams are handed to the
// DatagramHandler on the listener's read loop (transport.Config.OnDatagram), so they cost
// no goroutine of their own.
type SecureTransport struct {
	l      *transport.Listener
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	last   transport.ListenerStats // the counters at the last poll (the edge's sweep goroutine)

	dh    atomic.Pointer[DatagramHandler] // set by Serve when its Handler takes datagrams
	peers sync.Map                        // *transport.Conn → *securePeer, from Opened until Closed

	// Datagrams of connections that Serve has not opened yet (the first packets of a new
	// connection can carry some before Accept returns it): handed to the handler once it
	// has, at most earlyDatagramsPerConn per connection and earlyConns connections.
	earlyMu sync.Mutex
	early   map[*transport.Conn][][]byte
}

// Bounds of the datagrams held for connections not yet opened (SecureTransport.early).
const (
	earlyDatagramsPerConn = 16
	earlyConns            = 256
)

// ListenSecure binds the secure transport on addr with the edge's key and cfg (AllowPeer,
// IdleTimeout, ...; cfg.PrivateKey is set from key, cfg.OnDatagram to the transport's own).
func ListenSecure(addr string, key transport.PrivateKey, cfg transport.Config) (*SecureTransport, error) {
	cfg.PrivateKey = key
	t := &SecureTransport{}
	cfg.OnDatagram = t.datagram
	t.ctx, t.cancel = context.WithCancel(context.Background())
	l, err := transport.Listen(t.ctx, addr, cfg)
	if err != nil {
		t.cancel()
		return nil, &ListenError{Transport: "secure", Addr: addr, Err: err}
	}
	t.l = l
	return t, nil
}

// Name implements Transport.
func (t *SecureTransport) Name() string { return "secure" }

// Addr implements Transport.
func (t *SecureTransport) Addr() net.Addr { return t.l.Addr() }

// PublicKey is the edge's identity, which clients pin.
func (t *SecureTransport) PublicKey() transport.PublicKey { return t.l.PublicKey() }

// Stats returns the listener's counters (handshakes, replays, authentication failures).
func (t *SecureTransport) Stats() transport.ListenerStats { return t.l.Stats() }

// Serve implements Transport.
func (t *SecureTransport) Serve(h Handler) error {
	for {
		c, err := t.l.Accept(t.ctx)
		if err != nil {
			if errors.Is(err, transport.ErrListenerClosed) || t.ctx.Err() != nil {
				t.wg.Wait()
				return nil
			}
			return fmt.Errorf("edge: secure accept: %w", err)
		}
		p := newSecurePeer(c)
		dh, _ := h.(DatagramHandler)
		if dh != nil && t.dh.Load() == nil {
			t.dh.Store(&dh)
		}
		h.Opened(p)
		// From here the read loop hands the peer's datagrams to dh at once; those that came
		// before go to it first, on the peer's goroutine.
		t.earlyMu.Lock()
		t.peers.Store(c, p)
		early := t.early[c]
		delete(t.early, c)
		t.earlyMu.Unlock()
		t.wg.Go(func() {
			for _, msg := range early {
				dh.Datagram(p, msg)
			}
			t.read(p, h)
		})
	}
}

func newSecurePeer(c *transport.Conn) *securePeer {
	p := &securePeer{c: c}
	ra := c.RemoteAddr().(*net.UDPAddr).AddrPort()
	p.addr = netip.AddrPortFrom(ra.Addr().Unmap(), ra.Port())
	p.key = c.PeerKey().String()
	p.id = "key:" + p.key + "@" + p.addr.String()
	return p
}

// datagram is the listener's OnDatagram: it hands a peer's datagram to the DatagramHandler,
// on the read loop, which the handler must not block (the edge answers on the reliable
// stream, whose Send does not wait there). A datagram of a connection that Serve has not
// opened yet is held for it (see early); one over those bounds, or of a connection that
// has closed, goes to the handler with a peer the edge knows no session of, which it
// counts and leaves unanswered. Before Serve has a DatagramHandler, datagrams are held
// the same way.
// Contract: called only by the listener's read loop (transport.Config.OnDatagram).
func (t *SecureTransport) datagram(_ context.Context, c *transport.Conn, msg []byte) {
	if v, ok := t.peers.Load(c); ok {
		if dh := t.dh.Load(); dh != nil {
			(*dh).Datagram(v.(*securePeer), msg)
			return
		}
	}
	t.earlyMu.Lock()
	v, opened := t.peers.Load(c)
	held := false
	if !opened && c.Err() == nil {
		held = t.holdEarlyLocked(c, msg)
	}
	t.earlyMu.Unlock()
	if held {
		return
	}
	dh := t.dh.Load()
	if dh == nil {
		return // opened by a Serve whose Handler takes no datagrams
	}
	p, _ := v.(*securePeer)
	if p == nil {
		p = newSecurePeer(c) // not held: counted as a peer without a session
	}
	(*dh).Datagram(p, msg)
}

// holdEarlyLocked keeps msg for c until Serve opens it; false over the bounds. When the
// connections held reach earlyConns, those that closed without being accepted are let go
// first. Contract: called with t.earlyMu held.
func (t *SecureTransport) holdEarlyLocked(c *transport.Conn, msg []byte) bool {
	if t.early == nil {
		t.early = map[*transport.Conn][][]byte{}
	}
	q, ok := t.early[c]
	if !ok && len(t.early) >= earlyConns {
		for ec := range t.early {
			if ec.Err() != nil {
				delete(t.early, ec)
			}
		}
		if len(t.early) >= earlyConns {
			return false
		}
	}
	if len(q) >= earlyDatagramsPerConn {
		return false
	}
	t.early[c] = append(q, msg)
	return true
}

// read hands the peer's messages to h until the connection ends.
func (t *SecureTransport) read(p *securePeer, h Handler) {
	for {
		msg, err := p.c.Receive(t.ctx)
		var tooLarge *transport.MessageTooLargeError
		if errors.As(err, &tooLarge) { // refused from its length prefix; the connection goes on
			if th, ok := h.(tooLargeHandler); ok {
				th.FrameTooLarge(p, tooLarge.Prefix, tooLarge.Size)
			}
			continue
		}
		if err != nil {
			if t.ctx.Err() != nil {
				err = ErrPeerClosed
			}
			p.closed.Store(true)
			t.peers.Delete(p.c)
			h.Closed(p, err)
			return
		}
		h.Frame(p, msg)
	}
}

// SetMaxMessageSize changes the largest frame the transport accepts (Limits.MaxMessageBytes
// after a reload).
func (t *SecureTransport) SetMaxMessageSize(n int) { t.l.SetMaxMessageSize(n) }

// Close implements Transport.
func (t *SecureTransport) Close() error {
	t.cancel()
	return t.l.Close()
}

type securePeer struct {
	c      *transport.Conn
	addr   netip.AddrPort
	key    string
	id     string
	closed atomic.Bool
}

func (p *securePeer) ID() string                 { return p.id }
func (p *securePeer) Identity() string           { return p.key }
func (p *securePeer) RemoteAddr() netip.AddrPort { return p.addr }
func (p *securePeer) MaxFrame() int              { return 0 }

// DedicatedReader tells the edge that Frame is called on this peer's own goroutine.
func (p *securePeer) DedicatedReader() bool { return true }

func (p *securePeer) Send(ctx context.Context, frame []byte) error {
	if p.closed.Load() {
		return ErrPeerClosed
	}
	return p.c.Send(ctx, frame)
}

// TrySend sends frame unless the connection's send buffer is full (see trySendPeer).
func (p *securePeer) TrySend(frame []byte) error {
	if p.closed.Load() {
		return ErrPeerClosed
	}
	return p.c.TrySend(frame)
}

// SendLater queues frame for the next Flush (see batchPeer).
func (p *securePeer) SendLater(ctx context.Context, frame []byte) error {
	if p.closed.Load() {
		return ErrPeerClosed
	}
	return p.c.SendLater(ctx, frame)
}

// Flush transmits what SendLater queued.
func (p *securePeer) Flush() { p.c.Flush() }

func (p *securePeer) Close() error { return p.c.Close() }

// Await marks an answer owed by the peer (see awaitPeer).
func (p *securePeer) Await() { p.c.Await() }

// EndAwait ends one Await.
func (p *securePeer) EndAwait() { p.c.EndAwait() }
