package transport

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"time"
)

// Dial connects to the listener at addr whose public key is serverKey: it runs the
// handshake (retransmitting with backoff) and returns once the keys are established.
func Dial(ctx context.Context, addr string, serverKey PublicKey, cfg Config) (*Conn, error) {
	return dialFrom(ctx, nil, addr, serverKey, cfg)
}

// dialFrom is Dial from the local IP of laddr (nil: any; tests dial from 127.0.0.2 to be
// another source than 127.0.0.1).
func dialFrom(ctx context.Context, laddr *net.UDPAddr, addr string, serverKey PublicKey, cfg Config) (*Conn, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ra, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	remote := ra.AddrPort()
	network := "udp4"
	if !remote.Addr().Unmap().Is4() {
		network = "udp6"
	}
	if laddr == nil {
		laddr = &net.UDPAddr{IP: net.IPv4zero}
		if network == "udp6" {
			laddr = &net.UDPAddr{IP: net.IPv6unspecified}
		}
	}
	remote = netipUnmap(remote)
	cfgp := &cfg
	ep, err := newEndpoint(network, laddr, net.UDPAddrFromAddrPort(remote), cfgp)
	if err != nil {
		return nil, err
	}
	var idb [8]byte
	rand.Read(idb[:])
	now := time.Now()
	c := newConn(ep, cfgp, newPeerKeys(serverKey), binary.LittleEndian.Uint64(idb[:]), remote, true, now)
	ep.lend.conn = c
	ep.start()
	c.mu.Lock()
	c.startHandshakeLocked(now)
	c.mu.Unlock()
	hctx, cancel := context.WithTimeout(ctx, cfg.HandshakeTimeout)
	defer cancel()
	select {
	case <-c.hsDone:
		select {
		case <-c.done: // refused (CloseRefused) right after the response: say so now
			err := c.Err()
			c.closeNow(&CloseError{Code: CloseNormal, Reason: "dial failed"}, false)
			return nil, fmt.Errorf("transport: dial %s: %w", addr, err)
		default:
			return c, nil
		}
	case <-c.done:
		err := c.Err()
		c.closeNow(&CloseError{Code: CloseNormal, Reason: "dial failed"}, false)
		return nil, fmt.Errorf("transport: dial %s: %w", addr, err)
	case <-hctx.Done():
		c.closeNow(&CloseError{Code: CloseNormal, Reason: "dial failed"}, false)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("transport: dial %s: %w", addr, ctx.Err())
		}
		return nil, fmt.Errorf("transport: dial %s: %w", addr, ErrHandshakeTimeout)
	}
}
