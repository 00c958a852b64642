package transport

import (
	"crypto/ecdh"
	"crypto/hmac"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"hash"

	"golang.org/x/crypto/blake2s"
	"golang.org/x/crypto/chacha20poly1305"
)

// Byte offsets inside an initiation (see docs/protocol.md Part II).
const (
	initOffSender    = 4
	initOffEphemeral = 8
	initOffStatic    = initOffEphemeral + KeySize
	initOffPayload   = initOffStatic + KeySize + TagSize
	initPayloadSize  = TimestampSize + ConnIDSize
	initOffMAC1      = initOffPayload + initPayloadSize + TagSize
	initOffMAC2      = initOffMAC1 + MACSize
)

// Byte offsets inside a response.
const (
	respOffSender    = 4
	respOffReceiver  = 8
	respOffEphemeral = 12
	respOffEmpty     = respOffEphemeral + KeySize
	respOffMAC1      = respOffEmpty + TagSize
	respOffMAC2      = respOffMAC1 + MACSize
)

var (
	errHandshakeDecrypt = errors.New("transport: handshake authentication failed")
	errHandshakeSize    = errors.New("transport: handshake packet has the wrong size")
	errHandshakeType    = errors.New("transport: handshake packet has the wrong type")
)

// initialChainKey and initialHash are HASH(Construction) and HASH(that ‖ Identifier).
var initialChainKey, initialHash [blake2s.Size]byte

func init() {
	initialChainKey = blake2s.Sum256([]byte(Construction))
	initialHash = mixHash(initialChainKey, []byte(Identifier))
}

func mixHash(h [blake2s.Size]byte, data []byte) [blake2s.Size]byte {
	d, _ := blake2s.New256(nil)
	d.Write(h[:])
	d.Write(data)
	var out [blake2s.Size]byte
	d.Sum(out[:0])
	return out
}

func newBlake() hash.Hash { d, _ := blake2s.New256(nil); return d }

func hmacSum(key, in1, in2 []byte) (out [blake2s.Size]byte) {
	m := hmac.New(newBlake, key)
	m.Write(in1)
	m.Write(in2)
	m.Sum(out[:0])
	return out
}

// kdf derives n (1..3) keys from chaining key ck and input, as HKDF with HMAC-BLAKE2s.
func kdf(ck [blake2s.Size]byte, input []byte, n int) (out [3][blake2s.Size]byte) {
	prk := hmacSum(ck[:], input, nil)
	t := hmacSum(prk[:], []byte{1}, nil)
	out[0] = t
	for i := 2; i <= n; i++ {
		t = hmacSum(prk[:], t[:], []byte{byte(i)})
		out[i-1] = t
	}
	return out
}

// mac computes keyed BLAKE2s-128 (mac1, mac2 and cookies).
func mac(key []byte, msg []byte) (out [MACSize]byte) {
	d, _ := blake2s.New128(key)
	d.Write(msg)
	d.Sum(out[:0])
	return out
}

var zeroNonce [chacha20poly1305.NonceSize]byte

func aeadSeal(dst []byte, key [KeySize]byte, plain, ad []byte) []byte {
	a, _ := chacha20poly1305.New(key[:])
	return a.Seal(dst, zeroNonce[:], plain, ad)
}

func aeadOpen(dst []byte, key [KeySize]byte, ct, ad []byte) ([]byte, error) {
	a, _ := chacha20poly1305.New(key[:])
	out, err := a.Open(dst, zeroNonce[:], ct, ad)
	if err != nil {
		return nil, errHandshakeDecrypt
	}
	return out, nil
}

// initiatorState is what an initiator remembers between sending an initiation and
// receiving its response.
type initiatorState struct {
	senderIndex uint32
	ephemeral   *ecdh.PrivateKey
	hash        [blake2s.Size]byte
	chainKey    [blake2s.Size]byte
	packet      [InitiationSize]byte // the bytes sent, kept for mac1 matching of cookie replies
}

// staticIdentity is a local static key pair with the values derived from it once. The
// private key is reachable only through a function value, never stored as bytes or as a
// pointer to them: fmt cannot call PrivateKey.String on an unexported field, so a key
// held here by value would print as raw bytes in a %v of this struct or of anything
// containing it, and a pointer's target still prints under a verb that does not suit
// pointers (%s, %x, %d); every verb prints a function as its address.
type staticIdentity struct {
	key       func() *ecdh.PrivateKey // the private key, as crypto/ecdh wants it (public key derived once)
	public    PublicKey
	mac1Key   [blake2s.Size]byte // HASH(LabelMAC1 ‖ public): peers compute mac1 on packets to us with it
	cookieKey [blake2s.Size]byte // HASH(LabelCookie ‖ public): cookie replies from us are sealed with it
}

func newStaticIdentity(k PrivateKey) *staticIdentity {
	s := &staticIdentity{public: k.PublicKey()}
	key, _ := ecdh.X25519().NewPrivateKey(k[:])
	s.key = func() *ecdh.PrivateKey { return key }
	s.mac1Key = mixHash(blake2s.Sum256([]byte(LabelMAC1)), s.public[:])
	s.cookieKey = mixHash(blake2s.Sum256([]byte(LabelCookie)), s.public[:])
	return s
}

// peerKeys holds the values derived from a remote static key once.
type peerKeys struct {
	public    PublicKey
	mac1Key   [blake2s.Size]byte
	cookieKey [blake2s.Size]byte
}

func newPeerKeys(p PublicKey) peerKeys {
	return peerKeys{
		public:    p,
		mac1Key:   mixHash(blake2s.Sum256([]byte(LabelMAC1)), p[:]),
		cookieKey: mixHash(blake2s.Sum256([]byte(LabelCookie)), p[:]),
	}
}

// createInitiation builds an initiation to the responder r into st.packet. mac2 is
// computed from cookie when cookie is non-nil. (The pre-shared key enters in message 2.)
func createInitiation(local *staticIdentity, r *peerKeys, senderIndex uint32, ts [TimestampSize]byte, connID uint64, cookie *[MACSize]byte) (*initiatorState, error) {
	st := &initiatorState{senderIndex: senderIndex}
	eph, err := newEphemeral()
	if err != nil {
		return nil, err
	}
	st.ephemeral = eph
	ck := initialChainKey
	h := mixHash(initialHash, r.public[:])
	epub := publicOf(eph)
	ck = kdf(ck, epub[:], 1)[0]
	h = mixHash(h, epub[:])
	es, err := dh(eph, &r.public)
	if err != nil {
		return nil, err
	}
	k := kdf(ck, es[:], 2)
	ck = k[0]
	p := st.packet[:0]
	p = append(p, PacketInitiation, 0, 0, 0)
	p = binary.LittleEndian.AppendUint32(p, senderIndex)
	p = append(p, epub[:]...)
	p = aeadSeal(p, k[1], local.public[:], h[:])
	h = mixHash(h, p[initOffStatic:initOffPayload])
	ss, err := local.sharedWith(r)
	if err != nil {
		return nil, err
	}
	k = kdf(ck, ss[:], 2)
	ck = k[0]
	var payload [initPayloadSize]byte
	copy(payload[:], ts[:])
	binary.LittleEndian.PutUint64(payload[TimestampSize:], connID)
	p = aeadSeal(p, k[1], payload[:], h[:])
	h = mixHash(h, p[initOffPayload:initOffMAC1])
	m1 := mac(r.mac1Key[:], p)
	p = append(p, m1[:]...)
	if cookie != nil {
		m2 := mac(cookie[:], p)
		copy(st.packet[initOffMAC2:], m2[:])
	}
	st.hash, st.chainKey = h, ck
	return st, nil
}

// initiation is a parsed, authenticated initiation as the responder sees it.
type initiation struct {
	senderIndex uint32
	ephemeral   PublicKey
	static      PublicKey
	timestamp   [TimestampSize]byte
	connID      uint64
	hash        [blake2s.Size]byte
	chainKey    [blake2s.Size]byte
}

// parseInitiationHeader checks size and type only; consumeInitiation does the crypto.
func parseInitiationHeader(b []byte) error {
	if len(b) != InitiationSize {
		return errHandshakeSize
	}
	if b[0] != PacketInitiation || b[1]|b[2]|b[3] != 0 {
		return errHandshakeType
	}
	return nil
}

// checkMAC1 reports whether the packet's mac1 (at off) is valid for the key.
func checkMAC1(b []byte, off int, key *[blake2s.Size]byte) bool {
	m := mac(key[:], b[:off])
	return hmac.Equal(m[:], b[off:off+MACSize])
}

// consumeInitiation runs the responder's half of message 1. The caller has checked mac1
// (and mac2 when under load). It returns the initiator's identity and handshake state.
func consumeInitiation(local *staticIdentity, b []byte) (*initiation, error) {
	if err := parseInitiationHeader(b); err != nil {
		return nil, err
	}
	in := &initiation{senderIndex: binary.LittleEndian.Uint32(b[initOffSender:])}
	copy(in.ephemeral[:], b[initOffEphemeral:initOffStatic])
	ck := initialChainKey
	h := mixHash(initialHash, local.public[:])
	ck = kdf(ck, in.ephemeral[:], 1)[0]
	h = mixHash(h, in.ephemeral[:])
	es, err := dh(local.key(), &in.ephemeral)
	if err != nil {
		return nil, err
	}
	k := kdf(ck, es[:], 2)
	ck = k[0]
	var buf [initPayloadSize]byte
	st, err := aeadOpen(buf[:0], k[1], b[initOffStatic:initOffPayload], h[:])
	if err != nil {
		return nil, err
	}
	copy(in.static[:], st)
	h = mixHash(h, b[initOffStatic:initOffPayload])
	ss, err := local.sharedWith(&peerKeys{public: in.static})
	if err != nil {
		return nil, err
	}
	k = kdf(ck, ss[:], 2)
	ck = k[0]
	pl, err := aeadOpen(buf[:0], k[1], b[initOffPayload:initOffMAC1], h[:])
	if err != nil {
		return nil, err
	}
	copy(in.timestamp[:], pl[:TimestampSize])
	in.connID = binary.LittleEndian.Uint64(pl[TimestampSize:])
	in.hash = mixHash(h, b[initOffPayload:initOffMAC1])
	in.chainKey = ck
	return in, nil
}

// sessionKeys are the two directions' transport keys of one handshake.
type sessionKeys struct {
	send, recv [KeySize]byte
}

// createResponse builds the response to in and derives the responder's transport keys.
func createResponse(in *initiation, psk *[KeySize]byte, senderIndex uint32, peer *peerKeys, cookie *[MACSize]byte) ([ResponseSize]byte, sessionKeys, error) {
	var pkt [ResponseSize]byte
	var keys sessionKeys
	eph, err := newEphemeral()
	if err != nil {
		return pkt, keys, err
	}
	epub := publicOf(eph)
	ck, h := in.chainKey, in.hash
	ck = kdf(ck, epub[:], 1)[0]
	h = mixHash(h, epub[:])
	ee, err := dh(eph, &in.ephemeral)
	if err != nil {
		return pkt, keys, err
	}
	ck = kdf(ck, ee[:], 1)[0]
	se, err := dh(eph, &in.static)
	if err != nil {
		return pkt, keys, err
	}
	ck = kdf(ck, se[:], 1)[0]
	k := kdf(ck, psk[:], 3)
	ck = k[0]
	h = mixHash(h, k[1][:])
	p := pkt[:0]
	p = append(p, PacketResponse, 0, 0, 0)
	p = binary.LittleEndian.AppendUint32(p, senderIndex)
	p = binary.LittleEndian.AppendUint32(p, in.senderIndex)
	p = append(p, epub[:]...)
	p = aeadSeal(p, k[2], nil, h[:])
	m1 := mac(peer.mac1Key[:], p)
	p = append(p, m1[:]...)
	if cookie != nil {
		m2 := mac(cookie[:], p)
		copy(pkt[respOffMAC2:], m2[:])
	}
	t := kdf(ck, nil, 2)
	keys.recv, keys.send = t[0], t[1]
	return pkt, keys, nil
}

// parseResponseHeader checks size and type and returns (sender, receiver) indexes.
func parseResponseHeader(b []byte) (sender, receiver uint32, err error) {
	if len(b) != ResponseSize {
		return 0, 0, errHandshakeSize
	}
	if b[0] != PacketResponse || b[1]|b[2]|b[3] != 0 {
		return 0, 0, errHandshakeType
	}
	return binary.LittleEndian.Uint32(b[respOffSender:]), binary.LittleEndian.Uint32(b[respOffReceiver:]), nil
}

// consumeResponse runs the initiator's half of message 2 and derives its transport keys.
func consumeResponse(local *staticIdentity, r *peerKeys, psk *[KeySize]byte, st *initiatorState, b []byte) (sessionKeys, error) {
	var keys sessionKeys
	if _, _, err := parseResponseHeader(b); err != nil {
		return keys, err
	}
	var epub PublicKey
	copy(epub[:], b[respOffEphemeral:respOffEmpty])
	ck, h := st.chainKey, st.hash
	ck = kdf(ck, epub[:], 1)[0]
	h = mixHash(h, epub[:])
	ee, err := dh(st.ephemeral, &epub)
	if err != nil {
		return keys, err
	}
	ck = kdf(ck, ee[:], 1)[0]
	se, err := dh(local.key(), &epub)
	if err != nil {
		return keys, err
	}
	ck = kdf(ck, se[:], 1)[0]
	k := kdf(ck, psk[:], 3)
	ck = k[0]
	h = mixHash(h, k[1][:])
	if _, err := aeadOpen(nil, k[2], b[respOffEmpty:respOffMAC1], h[:]); err != nil {
		return keys, err
	}
	t := kdf(ck, nil, 2)
	keys.send, keys.recv = t[0], t[1]
	return keys, nil
}

// sharedWith computes the static-static DH with a peer.
func (s *staticIdentity) sharedWith(p *peerKeys) ([KeySize]byte, error) {
	return dh(s.key(), &p.public)
}

// newEphemeral generates an ephemeral X25519 key.
func newEphemeral() (*ecdh.PrivateKey, error) { return ecdh.X25519().GenerateKey(rand.Reader) }

func publicOf(k *ecdh.PrivateKey) (p PublicKey) {
	copy(p[:], k.PublicKey().Bytes())
	return p
}

// dh computes X25519(priv, pub); it fails on low-order points (all-zero output).
func dh(priv *ecdh.PrivateKey, pub *PublicKey) ([KeySize]byte, error) {
	var out [KeySize]byte
	pk, err := ecdh.X25519().NewPublicKey(pub[:])
	if err != nil {
		return out, errBadPoint
	}
	b, err := priv.ECDH(pk)
	if err != nil {
		return out, errBadPoint
	}
	copy(out[:], b)
	return out, nil
}
