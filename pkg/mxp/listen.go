package mxp

import (
	"context"
	"fmt"
	"net"

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
	// Transport holds the transport's tuning knobs (timeouts, windows, packet size); its
	// zero fields mean the documented defaults. Its PrivateKey and AllowPeer are set from
	// the fields above.
	Transport transport.Config
	// InboxSize is how many received frames (other than answers to Call) wait for
	// Receive before the connection stops reading. Default: 1024.
	InboxSize int
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
	l    *transport.Listener
	opts Options
}

// Listen opens addr (e.g. "127.0.0.1:9000") and accepts connections from clients.
func Listen(ctx context.Context, addr string, opts Options) (*Listener, error) {
	cfg, err := opts.transportConfig()
	if err != nil {
		return nil, err
	}
	l, err := transport.Listen(ctx, addr, cfg)
	if err != nil {
		return nil, fmt.Errorf("mxp: listen %s: %w", addr, err)
	}
	return &Listener{l: l, opts: opts}, nil
}

// Accept waits for the next authenticated connection.
func (l *Listener) Accept(ctx context.Context) (*Conn, error) {
	t, err := l.l.Accept(ctx)
	if err != nil {
		return nil, err
	}
	return newConn(t, l.opts.InboxSize), nil
}

// Addr is the listening address.
func (l *Listener) Addr() net.Addr { return l.l.Addr() }

// PublicKey is the listener's identity, which clients pin.
func (l *Listener) PublicKey() PublicKey { return l.l.PublicKey() }

// Stats reports handshake and attack counters.
func (l *Listener) Stats() transport.ListenerStats { return l.l.Stats() }

// Close closes the listener and every connection it accepted.
func (l *Listener) Close() error { return l.l.Close() }
