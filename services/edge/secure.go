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
type SecureTransport struct {
	l      *transport.Listener
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	last   transport.ListenerStats // the counters at the last poll (the edge's sweep goroutine)
}

// ListenSecure binds the secure transport on addr with the edge's key and cfg (AllowPeer,
// IdleTimeout, ...; cfg.PrivateKey is set from key).
func ListenSecure(addr string, key transport.PrivateKey, cfg transport.Config) (*SecureTransport, error) {
	cfg.PrivateKey = key
	ctx, cancel := context.WithCancel(context.Background())
	l, err := transport.Listen(ctx, addr, cfg)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("edge: secure listen %q: %w", addr, err)
	}
	return &SecureTransport{l: l, ctx: ctx, cancel: cancel}, nil
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
		p := &securePeer{c: c}
		ra := c.RemoteAddr().(*net.UDPAddr).AddrPort()
		p.addr = netip.AddrPortFrom(ra.Addr().Unmap(), ra.Port())
		p.key = c.PeerKey().String()
		p.id = "key:" + p.key + "@" + p.addr.String()
		h.Opened(p)
		t.wg.Go(func() { t.read(p, h) })
		if dh, ok := h.(DatagramHandler); ok {
			t.wg.Go(func() { t.readDatagrams(p, dh) })
		}
	}
}

// readDatagrams hands the peer's datagrams to h until the connection ends. Without it
// they would wait unread in the connection's queue (DatagramQueue) and be dropped there.
func (t *SecureTransport) readDatagrams(p *securePeer, h DatagramHandler) {
	for {
		msg, err := p.c.ReceiveDatagram(t.ctx)
		if err != nil {
			return
		}
		h.Datagram(p, msg)
	}
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
