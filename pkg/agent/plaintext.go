package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// MaxPlaintextFrame is the largest frame a plaintext connection carries: one frame per
// UDP datagram.
const MaxPlaintextFrame = 65507

// DialPlaintext connects to an edge's plaintext listener (`mxp dev --compat-addr`): MXP
// frames over UDP, one frame per datagram, with no encryption, no authentication and no
// retransmission. It exists for local development and for talking to edges that serve
// the reference SDK; use the secure transport (Run) for anything else. Frames larger than
// MaxPlaintextFrame are refused with CodeTooLarge.
func DialPlaintext(ctx context.Context, addr string) (FrameConn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", addr)
	if err != nil {
		return nil, fmt.Errorf("agent: dial %s: %w", addr, err)
	}
	return &plaintextConn{c: c.(*net.UDPConn), buf: make([]byte, MaxPlaintextFrame)}, nil
}

type plaintextConn struct {
	c *net.UDPConn

	wmu  sync.Mutex
	wbuf []byte

	rmu sync.Mutex
	buf []byte
}

// Send sends f as one datagram.
func (p *plaintextConn) Send(ctx context.Context, f *mxp.Frame) error {
	if f.EncodedLen() > MaxPlaintextFrame {
		return Errorf(CodeTooLarge, "frame of %d bytes exceeds one datagram (%d)", f.EncodedLen(), MaxPlaintextFrame)
	}
	p.wmu.Lock()
	defer p.wmu.Unlock()
	b, err := mxp.AppendFrame(p.wbuf[:0], f)
	if err != nil {
		return err
	}
	p.wbuf = b
	if dl, ok := ctx.Deadline(); ok {
		_ = p.c.SetWriteDeadline(dl)
	} else {
		_ = p.c.SetWriteDeadline(time.Time{})
	}
	_, err = p.c.Write(b)
	return err
}

// Receive reads the next datagram that holds a valid frame. Datagrams that do not
// decode are skipped (UDP may carry stray packets); a socket error ends the connection.
// The frame's payload is valid until the next Receive.
func (p *plaintextConn) Receive(ctx context.Context) (mxp.Frame, error) {
	p.rmu.Lock()
	defer p.rmu.Unlock()
	_ = p.c.SetReadDeadline(time.Time{}) // clear a deadline left by a cancelled read
	stop := context.AfterFunc(ctx, func() { _ = p.c.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	for {
		n, err := p.c.Read(p.buf)
		if err != nil {
			if ctx.Err() != nil {
				return mxp.Frame{}, ctx.Err()
			}
			return mxp.Frame{}, err
		}
		f, used, err := mxp.Decode(p.buf[:n])
		if err != nil || used != n {
			continue
		}
		return f, nil
	}
}

// Close closes the socket; a blocked Receive returns.
func (p *plaintextConn) Close() error {
	err := p.c.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
