package transport

import (
	"context"
	"fmt"
	"time"
)

// Config holds the settings of a Listener or a dialled Conn. The zero value of every field
// means the documented default.
type Config struct {
	// PrivateKey is the local static key. Required.
	PrivateKey PrivateKey
	// OnMessage, when set, receives every reliable message, in order per connection, on
	// the goroutine that reads the socket (a Listener's read loop serves all its
	// connections), instead of Receive, which then returns ErrOnMessage. It saves the
	// goroutine hand-off per message that Receive costs (a wake-up of another thread:
	// a few microseconds, a third of a loopback round trip) and a goroutine per
	// connection. It must not block: called from it, Send (on any connection) returns
	// ErrSendBufferFull instead of waiting for buffer space, and Close (of any
	// connection, or the Listener's) closes without lingering; long work belongs on
	// another goroutine. While it runs, no other message of ANY connection of the
	// Listener reaches its handler: a blocked handler delays them all. Liveness survives
	// it: the delayed-ACK timer is armed before the handler runs, and after HandlerStall
	// a helper reads the socket (ACKs, probes, handshakes, messages queued under the
	// receive budget) until the handler returns (stall.go), so peers do not declare this
	// side dead. ctx ends when the connection closes. With OnMessage set, a
	// Listener still offers connections to Accept, but one that nobody accepts is not
	// closed when the accept queue is full. msg belongs to the callee.
	OnMessage func(ctx context.Context, c *Conn, msg []byte)
	// OnDatagram, when set, receives every datagram (SendDatagram's), on the goroutine
	// that reads the socket, in the order the packets were processed, instead of
	// ReceiveDatagram, which then returns ErrOnDatagram. It has OnMessage's contract: it
	// must not block; called from it, Send returns ErrSendBufferFull instead of waiting
	// and Close does not linger; ctx ends when the connection closes; msg belongs to the
	// callee. A datagram is held only until the end of the batch of packets it came in
	// (not in a queue of DatagramQueue waiting for a reader), so an application that
	// takes datagrams needs no goroutine per connection for them. OnMessage and
	// OnDatagram are independent: either, both or neither may be set; with either set, a
	// dialled Conn's Receive does not read the socket itself (the read loop does).
	OnDatagram func(ctx context.Context, c *Conn, msg []byte)
	// PresharedKey is mixed into the handshake when both sides set the same value
	// (post-quantum hedge, as WireGuard). Default: none (all zero).
	PresharedKey PresharedKey
	// AllowPeer, on a Listener, decides which client keys may connect. Default: any key.
	AllowPeer func(PublicKey) bool
	// MaxPacketSize is the largest UDP payload sent, MinPacketSize..MaxPacketSizeLimit.
	// Default: DefaultPacketSize (1200).
	MaxPacketSize int
	// HandshakeTimeout bounds Dial when the context has no earlier deadline. Default: 10 s.
	HandshakeTimeout time.Duration
	// KeepaliveInterval: a PING is sent when nothing was sent for this long. Default: 10 s.
	KeepaliveInterval time.Duration
	// IdleTimeout closes the connection when nothing authenticated arrived for this long.
	// Default: 30 s.
	IdleTimeout time.Duration
	// DeadPeerTimeout closes the connection with ErrPeerUnreachable when the peer answered
	// nothing authenticated for this long after this side sent something that asks for an
	// acknowledgement (data, a retransmission, a keepalive or a probe PING): a live peer
	// acknowledges within an RTT plus MaxAckDelay. An idle connection sends nothing more
	// than its keepalives, so a dead idle peer is noticed within KeepaliveInterval plus
	// this; one with an outstanding Await is probed every DeadPeerTimeout/ProbeDivisor
	// and noticed within 1.25 times this. The timeout is at least DeadPeerPTOs (3)
	// retransmission timeouts (a slow path is not a dead peer), and MinDeadPeerProbes (2)
	// probes must go unanswered first. Default: 2 s; negative: off (only IdleTimeout
	// closes).
	DeadPeerTimeout time.Duration
	// RekeyAfter and RejectAfter override RekeyAfterTime and RejectAfterTime (tests use
	// short values). RejectAfter must exceed RekeyAfter. Defaults: 120 s and 180 s.
	RekeyAfter, RejectAfter time.Duration
	// RecvWindow is how many stream bytes the peer may send beyond what the application
	// has taken; it bounds receive memory. Default and minimum: 24 MiB (one 16 MiB message
	// must fit).
	RecvWindow int
	// MaxMessageSize is the largest reliable message the application accepts, in bytes,
	// at most (and by default) MaxMessageSize (16 MiB + 64). A message declared larger is
	// refused from its length prefix, before any of its body is held: its first
	// OversizePrefix bytes are kept and reported (Receive returns a *MessageTooLargeError;
	// with OnMessage, OnMessageTooLarge is called) and the rest is discarded as it
	// arrives; the connection stays open. Listener.SetMaxMessageSize changes it live.
	MaxMessageSize int
	// OnMessageTooLarge, with OnMessage set, is told of each refused message (see
	// MaxMessageSize), in order with the messages, on the same goroutine and under the
	// same rules as OnMessage. Nil: refused messages are only counted
	// (Stats.MessagesTooLarge, ListenerStats.MessagesTooLarge).
	OnMessageTooLarge func(ctx context.Context, c *Conn, err *MessageTooLargeError)
	// RecvBudget bounds the bytes that all connections of a Listener (or a dialled Conn)
	// hold together in reassembly and receive queues: partial and received messages not
	// yet taken, out-of-order fragments (each charged 48 bytes more than its length) and
	// queued datagrams. Data that does not fit is dropped and not acknowledged (the sender
	// retransmits it) and counted (ListenerStats.RecvBudgetDrops). A message is reserved
	// whole at its length prefix, and then always completes; out-of-order data and
	// datagrams may fill only half of it; one connection holds at most half of it (at least
	// two largest messages). When it stays full for RecvStallTimeout while data is
	// refused, a Listener closes the connection holding the most (CloseRecvBudget). See
	// reassembly.go. Default: 64 MiB; at least 2 × (MaxMessageSize + 8).
	RecvBudget int
	// SendBuffer is how many stream bytes may be queued or unacknowledged before Send
	// blocks. Default: 24 MiB.
	SendBuffer int
	// DatagramQueue is how many received datagrams wait for ReceiveDatagram before the
	// oldest is dropped (with OnDatagram: how many one batch of packets may hold).
	// Default: 1024.
	DatagramQueue int
	// Linger bounds how long Close waits for sent messages to be acknowledged. Default: 2 s.
	Linger time.Duration
	// UnderLoadHandshakes is the handshake rate (packets/s) above which a Listener answers
	// initiations without a valid mac2 with a cookie reply. Default: 1000. A negative
	// value means always under load (every client must first fetch a cookie).
	UnderLoadHandshakes int
	// HandshakeRatePerSource and HandshakeBurstPerSource bound, while the Listener is
	// under load, the initiations with a valid cookie (mac2) that one source address (IPv4
	// address, IPv6 /64) may queue for the handshake worker: a token bucket per source,
	// checked on the read loop before any Diffie-Hellman work. Defaults: 50/s and 50. A
	// negative rate disables the limit.
	HandshakeRatePerSource  float64
	HandshakeBurstPerSource int
	// HandshakeRatePerKey and HandshakeBurstPerKey bound, while the Listener is under
	// load, the authenticated initiations of one client static key (checked after
	// decryption and the replay check). Defaults: 50/s and 50. A negative rate disables it.
	HandshakeRatePerKey  float64
	HandshakeBurstPerKey int
	// MaxConnections caps a Listener's connections (confirmed or not); a new client's
	// initiation beyond it is dropped and counted. Default: 10,000. A rekey of an existing
	// connection is never refused.
	MaxConnections int
	// MaxConnectionsPerSource caps the connections created from one source address (IPv4
	// address, IPv6 /64; the address of the initiation that created the connection).
	// Default: 1024.
	MaxConnectionsPerSource int
	// MaxPendingHandshakes caps the connections answered but not yet confirmed by their
	// first data packet (an unconfirmed connection lives at most HandshakeTimeout).
	// Default: 4096.
	MaxPendingHandshakes int
	// MaxPendingPerSource caps the unconfirmed connections of one source. Default: 64.
	MaxPendingPerSource int
	// SocketBuffer is the requested SO_RCVBUF/SO_SNDBUF. Default: 4 MiB.
	SocketBuffer int
	// DisableGSO turns off UDP generic segmentation offload (Linux), which otherwise sends
	// runs of full-size packets in one system call when the kernel supports it.
	DisableGSO bool
}

// withDefaults returns a copy with every zero field set to its default, or an error.
func (c Config) withDefaults() (Config, error) {
	if c.PrivateKey.IsZero() {
		return c, fmt.Errorf("transport: Config.PrivateKey is required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	defInt := func(d *int, v int) {
		if *d == 0 {
			*d = v
		}
	}
	defInt(&c.MaxPacketSize, DefaultPacketSize)
	if c.MaxPacketSize < MinPacketSize || c.MaxPacketSize > MaxPacketSizeLimit {
		return c, fmt.Errorf("transport: MaxPacketSize %d outside %d..%d", c.MaxPacketSize, MinPacketSize, MaxPacketSizeLimit)
	}
	def(&c.HandshakeTimeout, DefaultHandshakeTimeout)
	def(&c.KeepaliveInterval, DefaultKeepalive)
	def(&c.IdleTimeout, DefaultIdleTimeout)
	if c.DeadPeerTimeout == 0 {
		c.DeadPeerTimeout = DefaultDeadPeerTimeout
	}
	def(&c.RekeyAfter, RekeyAfterTime)
	def(&c.RejectAfter, RejectAfterTime)
	if c.RejectAfter <= c.RekeyAfter {
		return c, fmt.Errorf("transport: RejectAfter %v must exceed RekeyAfter %v", c.RejectAfter, c.RekeyAfter)
	}
	defInt(&c.RecvWindow, DefaultRecvWindow)
	if c.RecvWindow < DefaultRecvWindow {
		return c, fmt.Errorf("transport: RecvWindow %d below the minimum %d", c.RecvWindow, DefaultRecvWindow)
	}
	defInt(&c.MaxMessageSize, MaxMessageSize)
	if c.MaxMessageSize < 0 || c.MaxMessageSize > MaxMessageSize {
		return c, fmt.Errorf("transport: MaxMessageSize %d outside 1..%d", c.MaxMessageSize, MaxMessageSize)
	}
	defInt(&c.RecvBudget, DefaultRecvBudget)
	if c.RecvBudget < 2*(c.MaxMessageSize+8) {
		// A message is reserved whole (with its length prefix) and fragments may use half
		// the budget: a reservation must fit in the other half (reassembly.go).
		return c, fmt.Errorf("transport: RecvBudget %d below 2 × (MaxMessageSize %d + 8)", c.RecvBudget, c.MaxMessageSize)
	}
	defInt(&c.SendBuffer, DefaultSendBuffer)
	defInt(&c.DatagramQueue, DefaultDatagramQueue)
	def(&c.Linger, 2*time.Second)
	defInt(&c.UnderLoadHandshakes, UnderLoadHandshakes)
	defInt(&c.SocketBuffer, 4<<20)
	if c.HandshakeRatePerSource == 0 {
		c.HandshakeRatePerSource = DefaultHandshakeRatePerSource
	}
	defInt(&c.HandshakeBurstPerSource, DefaultHandshakeBurstPerSource)
	if c.HandshakeRatePerKey == 0 {
		c.HandshakeRatePerKey = DefaultHandshakeRatePerKey
	}
	defInt(&c.HandshakeBurstPerKey, DefaultHandshakeBurstPerKey)
	defInt(&c.MaxConnections, DefaultMaxConnections)
	defInt(&c.MaxConnectionsPerSource, DefaultMaxConnectionsPerSource)
	defInt(&c.MaxPendingHandshakes, DefaultMaxPendingHandshakes)
	defInt(&c.MaxPendingPerSource, DefaultMaxPendingPerSource)
	for _, v := range []struct {
		name string
		n    int
	}{
		{"HandshakeBurstPerSource", c.HandshakeBurstPerSource}, {"HandshakeBurstPerKey", c.HandshakeBurstPerKey},
		{"MaxConnections", c.MaxConnections}, {"MaxConnectionsPerSource", c.MaxConnectionsPerSource},
		{"MaxPendingHandshakes", c.MaxPendingHandshakes}, {"MaxPendingPerSource", c.MaxPendingPerSource},
	} {
		if v.n < 0 {
			return c, fmt.Errorf("transport: %s %d is negative", v.name, v.n)
		}
	}
	return c, nil
}

// handlersOnLoop reports whether application code (OnMessage, OnDatagram) runs on the read
// loop, which must then never wait on itself (Send, Close; see onHandlerLoop).
func (c *Config) handlersOnLoop() bool { return c.OnMessage != nil || c.OnDatagram != nil }

// maxDatagram is the largest datagram that fits in one packet.
func (c *Config) maxDatagram() int { return c.MaxPacketSize - DataOverhead - MaxDatagramOverhead }
