package transport

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/binary"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/crypto/blake2s"
	"golang.org/x/crypto/chacha20poly1305"
)

// Offsets inside a cookie reply.
const (
	cookieOffReceiver = 4
	cookieOffNonce    = 8
	cookieOffSealed   = cookieOffNonce + CookieNonceSize
)

// cookieChecker is the responder's side of the DoS defence: it validates mac1 and mac2 and
// writes cookie replies. It keeps no per-source state: the cookie for an address is a MAC
// of the address under a secret that changes every CookieRefreshTime.
type cookieChecker struct {
	local *staticIdentity

	mu          sync.Mutex
	secret      [blake2s.Size]byte
	secretSince time.Time
}

func newCookieChecker(local *staticIdentity) *cookieChecker {
	return &cookieChecker{local: local}
}

// cookieFor returns MAC(secret, address ‖ port), refreshing the secret when it is old.
func (c *cookieChecker) cookieFor(addr netip.AddrPort, now time.Time) [MACSize]byte {
	c.mu.Lock()
	if now.Sub(c.secretSince) > CookieRefreshTime {
		rand.Read(c.secret[:])
		c.secretSince = now
	}
	secret := c.secret
	c.mu.Unlock()
	var buf [18]byte
	a := addr.Addr().As16()
	copy(buf[:], a[:])
	binary.LittleEndian.PutUint16(buf[16:], addr.Port())
	return mac(secret[:], buf[:])
}

// checkMAC1 reports whether msg (an initiation or response) carries a valid mac1 for us.
func (c *cookieChecker) checkMAC1(msg []byte) bool {
	off := len(msg) - 2*MACSize
	return off > 0 && checkMAC1(msg, off, &c.local.mac1Key)
}

// checkMAC2 reports whether msg carries a mac2 made with the cookie of its source address.
func (c *cookieChecker) checkMAC2(msg []byte, src netip.AddrPort, now time.Time) bool {
	off := len(msg) - MACSize
	ck := c.cookieFor(src, now)
	m := mac(ck[:], msg[:off])
	return hmac.Equal(m[:], msg[off:])
}

// writeCookieReply seals the cookie for src, bound to msg's mac1, into a reply to the
// sender index idx. The reply (64 bytes) is smaller than any message it answers.
func (c *cookieChecker) writeCookieReply(dst *[CookieReplySize]byte, msg []byte, idx uint32, src netip.AddrPort, now time.Time) {
	ck := c.cookieFor(src, now)
	dst[0], dst[1], dst[2], dst[3] = PacketCookieReply, 0, 0, 0
	binary.LittleEndian.PutUint32(dst[cookieOffReceiver:], idx)
	rand.Read(dst[cookieOffNonce:cookieOffSealed])
	a, _ := chacha20poly1305.NewX(c.local.cookieKey[:])
	mac1 := msg[len(msg)-2*MACSize : len(msg)-MACSize]
	a.Seal(dst[cookieOffSealed:cookieOffSealed], dst[cookieOffNonce:cookieOffSealed], ck[:], mac1)
}

// parseCookieReply checks size and type and returns the receiver index.
func parseCookieReply(b []byte) (uint32, error) {
	if len(b) != CookieReplySize {
		return 0, errHandshakeSize
	}
	if b[0] != PacketCookieReply || b[1]|b[2]|b[3] != 0 {
		return 0, errHandshakeType
	}
	return binary.LittleEndian.Uint32(b[cookieOffReceiver:]), nil
}

// openCookieReply recovers the cookie from a reply to our message sent, whose mac1 binds it.
func openCookieReply(peer *peerKeys, b []byte, sent []byte) ([MACSize]byte, error) {
	var ck [MACSize]byte
	if _, err := parseCookieReply(b); err != nil {
		return ck, err
	}
	a, _ := chacha20poly1305.NewX(peer.cookieKey[:])
	mac1 := sent[len(sent)-2*MACSize : len(sent)-MACSize]
	out, err := a.Open(ck[:0], b[cookieOffNonce:cookieOffSealed], b[cookieOffSealed:], mac1)
	if err != nil {
		return ck, errHandshakeDecrypt
	}
	copy(ck[:], out)
	return ck, nil
}

// loadMeter counts handshake packets per second to decide when the responder is under load.
type loadMeter struct {
	mu     sync.Mutex
	second int64
	count  int
	limit  int
}

// underLoad counts one handshake packet and reports whether the rate is over the limit.
func (m *loadMeter) underLoad(now time.Time) bool {
	if m.limit < 0 {
		return true
	}
	s := now.Unix()
	m.mu.Lock()
	defer m.mu.Unlock()
	if s != m.second {
		m.second, m.count = s, 0
	}
	m.count++
	return m.count > m.limit
}
