package mxp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// MaxPlaintextFrame is the largest frame a plaintext connection carries: one frame per
// UDP datagram.
const MaxPlaintextFrame = 65507

// DialPlaintext connects to an edge's plaintext listener (`mxp dev --compat-addr`): MXP
// frames over UDP, one frame per datagram, with no encryption, no authentication and no
// retransmission, under the same correlator as the secure Conn. It exists for local
// development and for talking to edges that serve the reference SDK; use Dial for
// anything else. Frames larger than MaxPlaintextFrame are refused with CodeTooLarge;
// datagrams that are not valid frames are skipped (UDP may carry stray packets), and so
// are "connection refused" reports (no edge at the address yet: it may be starting).
func DialPlaintext(ctx context.Context, addr string) (*Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", addr)
	if err != nil {
		return nil, fmt.Errorf("mxp: dial %s: %w", addr, err)
	}
	u := c.(*net.UDPConn)
	_ = u.SetReadBuffer(8 << 20)
	_ = u.SetWriteBuffer(8 << 20)
	return NewConn(&plaintextConn{c: u, buf: make([]byte, MaxPlaintextFrame)}, 0), nil
}

// plaintextConn is the FrameConn of DialPlaintext.
type plaintextConn struct {
	c *net.UDPConn

	wmu  sync.Mutex
	wbuf []byte

	buf []byte // Receive's; Conn reads one frame at a time
}

// Send sends f as one datagram.
func (p *plaintextConn) Send(ctx context.Context, f *Frame) error {
	if n := f.EncodedLen(); n > MaxPlaintextFrame {
		return fmt.Errorf("%w: frame of %d bytes exceeds one datagram (%d)", CodeTooLarge, n, MaxPlaintextFrame)
	}
	p.wmu.Lock()
	defer p.wmu.Unlock()
	b, err := AppendFrame(p.wbuf[:0], f)
	if err != nil {
		return err
	}
	p.wbuf = b
	return p.writeLocked(ctx, b)
}

// SendRaw sends b as one datagram, as it is (Conn.SendRaw).
func (p *plaintextConn) SendRaw(ctx context.Context, b []byte) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	return p.writeLocked(ctx, b)
}

func (p *plaintextConn) writeLocked(ctx context.Context, b []byte) error {
	if dl, ok := ctx.Deadline(); ok {
		_ = p.c.SetWriteDeadline(dl)
	} else {
		_ = p.c.SetWriteDeadline(time.Time{})
	}
	_, err := p.c.Write(b)
	return err
}

// Receive reads the next datagram that holds a valid frame; a socket error other than
// "connection refused" ends the connection. The frame's payload is valid until the next
// Receive. Contract: one caller at a time (Conn's reader).
func (p *plaintextConn) Receive(ctx context.Context) (Frame, error) {
	_ = p.c.SetReadDeadline(time.Time{}) // clear a deadline left by a cancelled read
	stop := context.AfterFunc(ctx, func() { _ = p.c.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	for {
		n, err := p.c.Read(p.buf)
		if err != nil {
			if ctx.Err() != nil {
				return Frame{}, ctx.Err()
			}
			if errors.Is(err, syscall.ECONNREFUSED) {
				continue
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				// A deadline set by an earlier reader's cancellation that fired late.
				_ = p.c.SetReadDeadline(time.Time{})
				continue
			}
			return Frame{}, err
		}
		f, used, err := Decode(p.buf[:n])
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

func (p *plaintextConn) LocalAddr() net.Addr  { return p.c.LocalAddr() }
func (p *plaintextConn) RemoteAddr() net.Addr { return p.c.RemoteAddr() }
