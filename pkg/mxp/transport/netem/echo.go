package netem

import (
	"fmt"
	"net"
	"time"
)

// UDPEcho is a plain UDP echo server: it sends every datagram back to its sender. It is
// the baseline that MXP round trips are measured against (benchmarks in process, and
// `mxp udp-echo` for two processes), so it does nothing a UDP echo need not do: one
// goroutine, one buffer, no allocation per datagram.
type UDPEcho struct{ c *net.UDPConn }

// ListenUDPEcho starts an echo server on addr ("127.0.0.1:0": any free port).
func ListenUDPEcho(addr string) (*UDPEcho, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("netem: echo address %q: %w", addr, err)
	}
	c, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, fmt.Errorf("netem: echo: %w", err)
	}
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			_, _ = c.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	return &UDPEcho{c: c}, nil
}

// Addr is the server's address.
func (e *UDPEcho) Addr() net.Addr { return e.c.LocalAddr() }

// Close stops the server.
func (e *UDPEcho) Close() error { return e.c.Close() }

// UDPPinger is the client side of the baseline: a connected socket that writes a
// datagram and reads the echo, as a plain UDP client does.
type UDPPinger struct {
	c   *net.UDPConn
	buf []byte
}

// DialUDPPinger connects to an echo server at addr.
func DialUDPPinger(addr string) (*UDPPinger, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("netem: echo address %q: %w", addr, err)
	}
	c, err := net.DialUDP("udp", nil, ua)
	if err != nil {
		return nil, fmt.Errorf("netem: dial echo: %w", err)
	}
	return &UDPPinger{c: c, buf: make([]byte, 65536)}, nil
}

// RoundTrip sends msg and waits for a datagram back; it returns the round trip. A read
// that takes longer than timeout fails (a lost datagram is not retried).
func (p *UDPPinger) RoundTrip(msg []byte, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	if _, err := p.c.Write(msg); err != nil {
		return 0, err
	}
	_ = p.c.SetReadDeadline(start.Add(timeout))
	if _, err := p.c.Read(p.buf); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// RoundTrips runs n round trips of msg back to back and returns the time they took.
func (p *UDPPinger) RoundTrips(n int, msg []byte) (time.Duration, error) {
	start := time.Now()
	_ = p.c.SetReadDeadline(time.Time{})
	for range n {
		if _, err := p.c.Write(msg); err != nil {
			return 0, err
		}
		if _, err := p.c.Read(p.buf); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

// Close closes the socket.
func (p *UDPPinger) Close() error { return p.c.Close() }
