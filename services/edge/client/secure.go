package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/mxp-mesh/mesh/pkg/mxp"
	"github.com/mxp-mesh/mesh/pkg/mxp/transport"
)

// SecureConn is a Conn over the secure transport: one reliable, ordered message per frame.
type SecureConn struct {
	c *transport.Conn
}

// DialSecure runs the handshake with the edge at addr, whose public key is edgeKey, as
// the identity key, and returns a Client on the connection. When nothing listens at addr
// and the host says so (ICMP port unreachable, Linux), it fails at once with an error
// matching mxp.CodeUnreachable.
func DialSecure(ctx context.Context, addr string, edgeKey transport.PublicKey, key transport.PrivateKey) (*Client, error) {
	c, err := transport.Dial(ctx, addr, edgeKey, transport.Config{PrivateKey: key})
	if err != nil {
		if errors.Is(err, transport.ErrPeerUnreachable) { // refused: nothing listens at addr
			return nil, fmt.Errorf("%w: %w", mxp.CodeUnreachable, err)
		}
		return nil, err
	}
	return New(&SecureConn{c: c}, 0), nil
}

// Send implements Conn.
func (s *SecureConn) Send(ctx context.Context, frame []byte) error { return s.c.Send(ctx, frame) }

// Recv implements Conn.
func (s *SecureConn) Recv() ([]byte, error) { return s.c.Receive(context.Background()) }

// Await and EndAwait bracket a request's wait (see transport.Conn.Await): the transport
// probes a silent edge meanwhile, so a dead edge fails the request within about the
// transport's DeadPeerTimeout.
func (s *SecureConn) Await()    { s.c.Await() }
func (s *SecureConn) EndAwait() { s.c.EndAwait() }

// Close implements Conn.
func (s *SecureConn) Close() error { return s.c.Close() }
