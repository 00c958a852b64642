// Package netem is a UDP relay that damages traffic on purpose: loss, duplication,
// reordering, delay and jitter. Tests use it in process and `mxp relay` runs it for users
// who want to see how their agents behave on a bad network. It must never be used to carry
// production traffic; it knows nothing of the packets it forwards.
package netem

import (
	"container/heap"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Config says how to damage traffic; the zero value forwards everything untouched.
type Config struct {
	Loss    float64       // probability a packet is dropped, 0..1
	Dup     float64       // probability a packet is sent twice
	Reorder float64       // probability a packet is held back behind later ones
	Delay   time.Duration // one-way delay added to every packet
	Jitter  time.Duration // the delay varies uniformly by ± this
	Seed    uint64        // random seed; 0 picks one
}

// Validate checks the probabilities and durations.
func (c Config) Validate() error {
	for _, p := range []float64{c.Loss, c.Dup, c.Reorder} {
		if p < 0 || p > 1 {
			return fmt.Errorf("netem: probability %v outside 0..1", p)
		}
	}
	if c.Delay < 0 || c.Jitter < 0 {
		return errors.New("netem: negative delay or jitter")
	}
	return nil
}

// Stats counts what the relay did.
type Stats struct {
	Received, Forwarded, Dropped, Duplicated, Reordered uint64
}

// Relay forwards datagrams between clients of its front address and one upstream.
type Relay struct {
	cfg   Config
	front *net.UDPConn
	to    netip.AddrPort

	mu      sync.Mutex
	rng     *rand.Rand
	clients map[netip.AddrPort]*net.UDPConn // one upstream socket per client
	queue   pktHeap
	wake    chan struct{}
	closed  bool

	wg    sync.WaitGroup
	stats struct{ received, forwarded, dropped, duplicated, reordered atomic.Uint64 }
}

// New starts a relay listening on listen that forwards to to.
func New(listen, to string, cfg Config) (*Relay, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	la, err := net.ResolveUDPAddr("udp", listen)
	if err != nil {
		return nil, err
	}
	ta, err := net.ResolveUDPAddr("udp", to)
	if err != nil {
		return nil, err
	}
	front, err := net.ListenUDP("udp", la)
	if err != nil {
		return nil, err
	}
	_ = front.SetReadBuffer(4 << 20)
	_ = front.SetWriteBuffer(4 << 20)
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	r := &Relay{
		cfg: cfg, front: front, to: ta.AddrPort(),
		rng:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		clients: make(map[netip.AddrPort]*net.UDPConn),
		wake:    make(chan struct{}, 1),
	}
	r.wg.Add(2)
	go r.readFront()
	go r.deliver()
	return r, nil
}

// Addr is the address clients send to.
func (r *Relay) Addr() net.Addr { return r.front.LocalAddr() }

// Stats returns the counters.
func (r *Relay) Stats() Stats {
	return Stats{r.stats.received.Load(), r.stats.forwarded.Load(), r.stats.dropped.Load(),
		r.stats.duplicated.Load(), r.stats.reordered.Load()}
}

// Close stops the relay and waits for its goroutines.
func (r *Relay) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.front.Close()
	for _, c := range r.clients {
		c.Close()
	}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
	r.wg.Wait()
	return nil
}

func (r *Relay) readFront() {
	defer r.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, src, err := r.front.ReadFromUDPAddrPort(buf)
		if err != nil {
			if r.isClosed() {
				return
			}
			continue
		}
		up, err := r.upstream(src)
		if err != nil {
			continue
		}
		r.schedule(buf[:n], up, r.to)
	}
}

func (r *Relay) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// upstream returns (creating) the socket that carries src's traffic to the upstream.
func (r *Relay) upstream(src netip.AddrPort) (*net.UDPConn, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, net.ErrClosed
	}
	if c, ok := r.clients[src]; ok {
		return c, nil
	}
	c, err := net.ListenUDP("udp", nil)
	if err != nil {
		return nil, err
	}
	_ = c.SetReadBuffer(4 << 20)
	_ = c.SetWriteBuffer(4 << 20)
	r.clients[src] = c
	r.wg.Add(1)
	go r.readBack(c, src)
	return c, nil
}

// readBack forwards the upstream's replies to the client src.
func (r *Relay) readBack(c *net.UDPConn, src netip.AddrPort) {
	defer r.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, _, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if r.isClosed() {
				return
			}
			continue
		}
		r.schedule(buf[:n], r.front, src)
	}
}

// schedule applies the damage to one packet and queues its copies for delivery.
func (r *Relay) schedule(b []byte, via *net.UDPConn, to netip.AddrPort) {
	r.stats.received.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	if r.rng.Float64() < r.cfg.Loss {
		r.stats.dropped.Add(1)
		return
	}
	copies := 1
	if r.rng.Float64() < r.cfg.Dup {
		copies = 2
		r.stats.duplicated.Add(1)
	}
	now := time.Now()
	for i := 0; i < copies; i++ {
		d := r.cfg.Delay
		if r.cfg.Jitter > 0 {
			d += time.Duration(r.rng.Int64N(int64(2*r.cfg.Jitter)+1)) - r.cfg.Jitter
		}
		if r.rng.Float64() < r.cfg.Reorder {
			d += r.cfg.Delay + r.cfg.Jitter + time.Millisecond // behind the packets that follow
			r.stats.reordered.Add(1)
		}
		heap.Push(&r.queue, &pkt{at: now.Add(max(d, 0)), b: append([]byte(nil), b...), via: via, to: to})
	}
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// deliver sends queued packets when they are due.
func (r *Relay) deliver() {
	defer r.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return
		}
		now := time.Now()
		var due []*pkt
		for len(r.queue) > 0 && !r.queue[0].at.After(now) {
			due = append(due, heap.Pop(&r.queue).(*pkt))
		}
		wait := time.Hour
		if len(r.queue) > 0 {
			wait = r.queue[0].at.Sub(now)
		}
		r.mu.Unlock()
		for _, p := range due {
			if _, err := p.via.WriteToUDPAddrPort(p.b, p.to); err == nil {
				r.stats.forwarded.Add(1)
			}
		}
		if len(due) > 0 {
			continue
		}
		t.Reset(wait)
		select {
		case <-t.C:
		case <-r.wake:
		}
	}
}

type pkt struct {
	at  time.Time
	b   []byte
	via *net.UDPConn
	to  netip.AddrPort
}

type pktHeap []*pkt

func (h pktHeap) Len() int           { return len(h) }
func (h pktHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h pktHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *pktHeap) Push(x any)        { *h = append(*h, x.(*pkt)) }
func (h *pktHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return p
}
