package client

import (
	"context"

	"github.com/mxp-mesh/mesh/pkg/mxp/transport"
)

// SecureConn is a Conn over the secure transport: one reliable, ordered message per frame.
type SecureConn struct {
	c *transport.Conn
}

// DialSecure runs the handshake with the edge at addr, whose public key is edgeKey, as
// the identity key, and returns a Client on the connection.
func DialSecure(ctx context.Context, addr string, edgeKey transport.PublicKey, key transport.PrivateKey) (*Client, error) {
	c, err := transport.Dial(ctx, addr, edgeKey, transport.Config{PrivateKey: key})
	if err != nil {
		return nil, err
	}
	return New(&SecureConn{c: c}, 0), nil
}

// Send implements Conn.
func (s *SecureConn) Send(ctx context.Context, frame []byte) error { return s.c.Send(ctx, frame) }

// Recv implements Conn.
func (s *SecureConn) Recv() ([]byte, error) { return s.c.Receive(context.Background()) }

// Close implements Conn.
func (s *SecureConn) Close() error { return s.c.Close() }
