package edge

import (
	"context"
	"errors"
	"net"
	"net/netip"
)

// Peer is one connection to the edge, as a transport presents it: it has an identity and
// an address, sends encoded frames, and can be closed. The edge never sees datagrams,
// handshakes or keys.
type Peer interface {
	// ID is unique among the edge's live peers, e.g. "compat:127.0.0.1:40000" or
	// "key:<public key>"; it keys per-peer limits and appears in logs and bus headers.
	ID() string
	// Identity is the peer's authenticated identity: its static public key on the secure
	// transport, "" on the plaintext listener (which authenticates nothing).
	Identity() string
	// RemoteAddr is the peer's current UDP address.
	RemoteAddr() netip.AddrPort
	// Send transmits one encoded frame. It may block for flow control until ctx ends, and
	// must not keep frame after it returns. It is safe for concurrent use.
	Send(ctx context.Context, frame []byte) error
	// MaxFrame is the largest frame Send can carry; 0 means any valid frame.
	MaxFrame() int
	// Close ends the connection; the transport then calls Handler.Closed once.
	Close() error
}

// batchPeer is a Peer that can queue frames and transmit them together: the reply router
// sends the answers of one burst of bus replies with SendLater and flushes each peer once
// at the end of the burst, so a peer with many Calls in flight gets full packets and one
// system call instead of one per answer. Optional: other peers get Send.
type batchPeer interface {
	// SendLater queues frame as Send would, leaving its transmission to Flush.
	SendLater(ctx context.Context, frame []byte) error
	// Flush transmits what SendLater queued.
	Flush()
}

// trySendPeer is a Peer whose Send may wait (the secure transport's flow control) and that
// can also hand a frame over without waiting: TrySend returns
// transport.ErrSendBufferFull at once, queuing nothing, when the peer has no room. The
// edge delivers a Call on the goroutine that took it from the bus when the peer has room,
// and on the session's delivery goroutine only when it has not. Optional.
type trySendPeer interface {
	TrySend(frame []byte) error
}

// awaitPeer is a Peer whose transport can probe it while the edge waits for its answer
// (the secure transport): the edge brackets every Call delivered to the peer with Await
// and EndAwait, so a peer that dies holding a Call is found dead within about the
// transport's DeadPeerTimeout, and its pending Calls fail with unreachable at once.
// Optional: the plaintext peers end only by their idle timeout.
type awaitPeer interface {
	Await()
	EndAwait()
}

// Handler receives what a transport carries. The edge implements it.
type Handler interface {
	// Opened is called once for a new peer, before its first Frame.
	Opened(p Peer)
	// Frame hands over one received message: what the peer sent as one frame, not yet
	// checked. msg is valid only during the call, and Frame must not block for long —
	// unless the peer implements DedicatedReader() bool returning true: then Frame is
	// called on that peer's own goroutine, msg becomes the handler's, and Frame may block
	// (that is how a slow stream pushes back on its sender).
	Frame(p Peer, msg []byte)
	// Closed is called once when a peer's connection ends, with the reason.
	Closed(p Peer, err error)
}

// DatagramHandler is a Handler that also receives what a peer sent as an unreliable
// datagram (the secure transport's SendDatagram), so that nothing a peer sends goes
// unanswered and uncounted. Datagram is called on the transport's read loop (the secure
// transport's, which serves every connection), concurrently with the peer's Frame calls:
// it must not block (a Send there does not wait: it fails when the send buffer is full);
// msg becomes the handler's. Optional: a transport without datagrams never calls it.
type DatagramHandler interface {
	Datagram(p Peer, msg []byte)
}

// tooLargeHandler is implemented by a Handler (the edge) that answers frames a transport
// refused for their size before receiving them (the secure transport enforces the
// frame limit from the length prefix): prefix is the frame's start (its header), size
// its declared length. Optional, like DedicatedReader.
type tooLargeHandler interface {
	FrameTooLarge(p Peer, prefix []byte, size uint64)
}

// Transport accepts peers and hands their messages to a Handler.
type Transport interface {
	// Name labels the transport in metrics and logs ("secure", "compat").
	Name() string
	// Serve runs until Close, calling h for every peer event. It returns nil after Close.
	Serve(h Handler) error
	// Addr is the bound local address.
	Addr() net.Addr
	// Close stops the transport and closes every peer.
	Close() error
}

// Errors of peers and transports.
var (
	// ErrPeerClosed is returned by Send on a closed peer, and is the reason given to
	// Handler.Closed when the edge closed the peer.
	ErrPeerClosed = errors.New("edge: peer closed")
	// ErrIdle is the reason given to Handler.Closed when a peer timed out.
	ErrIdle = errors.New("edge: peer idle timeout")
	// ErrFrameTooLarge is returned by Send for a frame over the peer's MaxFrame.
	ErrFrameTooLarge = errors.New("edge: frame too large for the transport")
)
