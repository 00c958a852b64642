package edge

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// CompatMaxFrame is the largest frame the plaintext listener can carry: one UDP datagram.
const CompatMaxFrame = 65507

// CompatConfig configures the plaintext listener.
type CompatConfig struct {
	Addr string
	// IdleTimeout ends a peer that sent nothing for this long. Default 90s.
	IdleTimeout time.Duration
	// MaxPeers bounds the peers tracked at once; datagrams from further addresses are
	// dropped (counted by the OnDrop hook). Default 100,000.
	MaxPeers int
	// OnDrop, when set, is called for each datagram dropped before reaching the handler.
	OnDrop func(reason string)
}

// CompatTransport is the plaintext MXP listener of the reference agents SDK: one frame per
// UDP datagram, no handshake, no encryption. A peer is a remote address; it ends after
// IdleTimeout without traffic. Replies go to the address the peer last sent from.
type CompatTransport struct {
	cfg   CompatConfig
	conn  *net.UDPConn
	mu    sync.Mutex
	peers map[netip.AddrPort]*compatPeer
	h     Handler
	done  chan struct{}
	once  sync.Once
}

// ListenCompat binds the plaintext listener. The address check (loopback only unless
// configured) is Config.Validate's job.
func ListenCompat(cfg CompatConfig) (*CompatTransport, error) {
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 90 * time.Second
	}
	if cfg.MaxPeers <= 0 {
		cfg.MaxPeers = 100_000
	}
	ua, err := net.ResolveUDPAddr("udp", cfg.Addr)
	if err != nil {
		return nil, &ListenError{Transport: "compat", Addr: cfg.Addr, Err: err}
	}
	conn, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, &ListenError{Transport: "compat", Addr: cfg.Addr, Err: err}
	}
	// Large socket buffers absorb bursts; the kernel caps them at its own maximum.
	_ = conn.SetReadBuffer(8 << 20)
	_ = conn.SetWriteBuffer(8 << 20)
	return &CompatTransport{cfg: cfg, conn: conn, peers: map[netip.AddrPort]*compatPeer{}, done: make(chan struct{})}, nil
}

// Name implements Transport.
func (t *CompatTransport) Name() string { return "compat" }

// Addr implements Transport.
func (t *CompatTransport) Addr() net.Addr { return t.conn.LocalAddr() }

// Serve implements Transport: it reads datagrams until Close.
func (t *CompatTransport) Serve(h Handler) error {
	t.mu.Lock()
	t.h = h
	t.mu.Unlock()
	go t.reap()
	buf := make([]byte, 64<<10)
	for {
		n, addr, err := t.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			select {
			case <-t.done:
				return nil
			default:
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			return fmt.Errorf("edge: compat read: %w", err)
		}
		addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
		p := t.peer(addr)
		if p == nil {
			if t.cfg.OnDrop != nil {
				t.cfg.OnDrop("too_many_peers")
			}
			continue
		}
		p.last.Store(time.Now().UnixNano())
		h.Frame(p, buf[:n])
	}
}

// peer returns the peer for addr, creating it (and telling the handler) when new.
func (t *CompatTransport) peer(addr netip.AddrPort) *compatPeer {
	t.mu.Lock()
	p, ok := t.peers[addr]
	if !ok {
		if len(t.peers) >= t.cfg.MaxPeers {
			t.mu.Unlock()
			return nil
		}
		p = &compatPeer{t: t, addr: addr, id: "compat:" + addr.String()}
		t.peers[addr] = p
	}
	t.mu.Unlock()
	if !ok {
		t.h.Opened(p)
	}
	return p
}

// reap closes peers idle for longer than IdleTimeout.
func (t *CompatTransport) reap() {
	tick := time.NewTicker(max(t.cfg.IdleTimeout/4, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-t.done:
			return
		case now := <-tick.C:
			limit := now.Add(-t.cfg.IdleTimeout).UnixNano()
			var idle []*compatPeer
			t.mu.Lock()
			for _, p := range t.peers {
				if p.last.Load() < limit {
					idle = append(idle, p)
				}
			}
			t.mu.Unlock()
			for _, p := range idle {
				p.end(ErrIdle)
			}
		}
	}
}

// Close implements Transport.
func (t *CompatTransport) Close() error {
	var err error
	t.once.Do(func() {
		close(t.done)
		err = t.conn.Close()
		t.mu.Lock()
		all := make([]*compatPeer, 0, len(t.peers))
		for _, p := range t.peers {
			all = append(all, p)
		}
		t.mu.Unlock()
		for _, p := range all {
			p.end(ErrPeerClosed)
		}
	})
	return err
}

type compatPeer struct {
	t      *CompatTransport
	addr   netip.AddrPort
	id     string
	last   atomic.Int64 // unix nanos of the last datagram
	closed atomic.Bool
}

func (p *compatPeer) ID() string                 { return p.id }
func (p *compatPeer) Identity() string           { return "" }
func (p *compatPeer) RemoteAddr() netip.AddrPort { return p.addr }
func (p *compatPeer) MaxFrame() int              { return CompatMaxFrame }

func (p *compatPeer) Send(_ context.Context, frame []byte) error {
	if p.closed.Load() {
		return ErrPeerClosed
	}
	if len(frame) > CompatMaxFrame {
		return ErrFrameTooLarge
	}
	_, err := p.t.conn.WriteToUDPAddrPort(frame, p.addr)
	return err
}

func (p *compatPeer) Close() error {
	p.end(ErrPeerClosed)
	return nil
}

// end forgets the peer and tells the handler, once.
func (p *compatPeer) end(reason error) {
	if !p.closed.CompareAndSwap(false, true) {
		return
	}
	p.t.mu.Lock()
	if p.t.peers[p.addr] == p {
		delete(p.t.peers, p.addr)
	}
	h := p.t.h
	p.t.mu.Unlock()
	if h != nil {
		h.Closed(p, reason)
	}
}
