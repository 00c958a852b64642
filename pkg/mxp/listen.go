package mxp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"

	"github.com/mxp-mesh/mesh/pkg/mxp/transport"
)

// Options configure Listen and Dial. PrivateKey is required; Dial also needs ServerKey.
type Options struct {
	// PrivateKey is the local identity (see GeneratePrivateKey, LoadPrivateKey).
	PrivateKey PrivateKey
	// ServerKey pins the listener's public key (Dial only).
	ServerKey PublicKey
	// AllowPeers, on Listen, is the allow-list of client keys. Nil or empty: any key.
	AllowPeers []PublicKey
	// Transport holds the transport's tuning knobs (timeouts, windows, packet size, the
	// receive budget); its zero fields mean the documented defaults. Its PrivateKey and
	// AllowPeer are set from the fields above. Transport.MaxMessageSize is the largest
	// frame accepted: a larger one is refused from its length prefix, before it is
	// received, and answered with an Error frame (code too_large) naming its message id.
	Transport transport.Config
	// InboxSize is how many received frames (other than answers to Call) wait for
	// Receive. When that many wait, Receive's reading stops (the transport's flow
	// control holds the rest back), while a Call waiting for its answer reads on and
	// sheds what it reads for Receive (counted by Conn.ShedFrames; a request is answered
	// with Error overloaded, see Conn). Default: 1024.
	InboxSize int
	// Serve, on Listen, answers every frame of every connection on the goroutine that
	// reads the socket (transport.Config.OnMessage), sending back what it returns, as
	// Conn.Serve does: no goroutine per connection and no hand-off per frame, the
	// fastest way to answer small requests. It must not block (long work belongs on a
	// goroutine of its own): while it runs no other frame of ANY connection is served,
	// so a blocked handler delays every client (the transport keeps acknowledging and
	// answering probes meanwhile, see transport.Config.OnMessage, so they stay
	// connected); an answer that does not fit in the connection's send buffer
	// is dropped and counted (Listener.DroppedAnswers). A message that is not a valid
	// frame is answered with an Error frame (message id 0). Accept is not used then.
	Serve Handler
}

func (o *Options) transportConfig() (transport.Config, error) {
	if o.PrivateKey.IsZero() {
		return transport.Config{}, fmt.Errorf("mxp: Options.PrivateKey is required")
	}
	cfg := o.Transport
	cfg.PrivateKey = o.PrivateKey
	if len(o.AllowPeers) > 0 {
		allowed := make(map[PublicKey]bool, len(o.AllowPeers))
		for _, k := range o.AllowPeers {
			allowed[k] = true
		}
		cfg.AllowPeer = func(k PublicKey) bool { return allowed[k] }
	}
	return cfg, nil
}

// Listener accepts MXP connections over the secure UDP transport.
type Listener struct {
	l       *transport.Listener
	handler Handler       // Options.Serve (the Options themselves are not kept: they hold the key)
	inbox   int           // Options.InboxSize
	dropped atomic.Uint64 // Serve's answers that did not fit in a send buffer
}

// ErrServing is returned by Accept on a Listener whose Options.Serve answers the frames.
var ErrServing = errors.New("mxp: the listener answers frames with Options.Serve; Accept is not used")

// Listen opens addr (e.g. "127.0.0.1:9000") and accepts connections from clients.
func Listen(ctx context.Context, addr string, opts Options) (*Listener, error) {
	cfg, err := opts.transportConfig()
	if err != nil {
		return nil, err
	}
	ml := &Listener{handler: opts.Serve, inbox: opts.InboxSize}
	if opts.Serve != nil {
		cfg.OnMessage = ml.serve
		cfg.OnMessageTooLarge = ml.serveTooLarge
	}
	l, err := transport.Listen(ctx, addr, cfg)
	if err != nil {
		return nil, fmt.Errorf("mxp: listen %s: %w", addr, err)
	}
	ml.l = l
	return ml, nil
}

// serve is the transport's OnMessage when Options.Serve is set.
func (l *Listener) serve(ctx context.Context, t *transport.Conn, b []byte) {
	var r *Frame
	if f, err := decodeMessage(b); err != nil {
		r = badFrameAnswer(err)
	} else if r = l.handler(ctx, f); r != nil {
		answering(r, f)
	}
	if r != nil && sendFrame(ctx, t, r) != nil {
		l.dropped.Add(1)
	}
}

// serveTooLarge answers a frame the transport refused for its size (with Serve set).
func (l *Listener) serveTooLarge(ctx context.Context, t *transport.Conn, err *transport.MessageTooLargeError) {
	if r := tooLargeAnswer(err); r != nil && sendFrame(ctx, t, r) != nil {
		l.dropped.Add(1)
	}
}

// SetMaxFrameSize changes Options.Transport.MaxMessageSize while the listener runs (for
// frames whose length prefix arrives from now on); n <= 0 means the transport's maximum.
func (l *Listener) SetMaxFrameSize(n int) { l.l.SetMaxMessageSize(n) }

// DroppedAnswers counts the answers of Options.Serve that could not be sent: the
// connection's send buffer was full (a client that does not read) or it had closed.
func (l *Listener) DroppedAnswers() uint64 { return l.dropped.Load() }

// Accept waits for the next authenticated connection.
func (l *Listener) Accept(ctx context.Context) (*Conn, error) {
	if l.handler != nil {
		return nil, ErrServing
	}
	t, err := l.l.Accept(ctx)
	if err != nil {
		return nil, err
	}
	return newConn(t, l.inbox), nil
}

// Addr is the listening address.
func (l *Listener) Addr() net.Addr { return l.l.Addr() }

// PublicKey is the listener's identity, which clients pin.
func (l *Listener) PublicKey() PublicKey { return l.l.PublicKey() }

// Stats reports handshake and attack counters.
func (l *Listener) Stats() transport.ListenerStats { return l.l.Stats() }

// Close closes the listener and every connection it accepted.
func (l *Listener) Close() error { return l.l.Close() }
