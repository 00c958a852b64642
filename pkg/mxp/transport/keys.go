package transport

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"

	"golang.org/x/crypto/curve25519"
)

// PrivateKey is a static or ephemeral X25519 private key (clamped).
type PrivateKey [KeySize]byte

// PublicKey is an X25519 public key: a peer's identity.
type PublicKey [KeySize]byte

// GeneratePrivateKey returns a new clamped X25519 private key from crypto/rand.
func GeneratePrivateKey() (PrivateKey, error) {
	var k PrivateKey
	if _, err := rand.Read(k[:]); err != nil {
		return k, fmt.Errorf("transport: generate key: %w", err)
	}
	k.clamp()
	return k, nil
}

func (k *PrivateKey) clamp() {
	k[0] &= 248
	k[31] = (k[31] & 127) | 64
}

// PublicKey derives the public key of k.
func (k PrivateKey) PublicKey() PublicKey {
	var p PublicKey
	curve25519.ScalarBaseMult((*[32]byte)(&p), (*[32]byte)(&k))
	return p
}

// IsZero reports whether k is all zero (unset).
func (k PrivateKey) IsZero() bool {
	var z PrivateKey
	return subtle.ConstantTimeCompare(k[:], z[:]) == 1
}

// IsZero reports whether p is all zero (unset).
func (p PublicKey) IsZero() bool { return p == PublicKey{} }

// String formats the key as standard base64 (44 characters), as WireGuard does.
func (p PublicKey) String() string { return base64.StdEncoding.EncodeToString(p[:]) }

// String formats the private key as standard base64. Handle with care.
func (k PrivateKey) String() string { return base64.StdEncoding.EncodeToString(k[:]) }

// MarshalText implements encoding.TextMarshaler (base64).
func (p PublicKey) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler (base64).
func (p *PublicKey) UnmarshalText(b []byte) error {
	k, err := ParsePublicKey(string(b))
	if err != nil {
		return err
	}
	*p = k
	return nil
}

// ParsePublicKey parses a base64 X25519 public key.
func ParsePublicKey(s string) (PublicKey, error) {
	var p PublicKey
	err := parseKey(s, p[:], "public")
	return p, err
}

// ParsePrivateKey parses a base64 X25519 private key; it is clamped.
func ParsePrivateKey(s string) (PrivateKey, error) {
	var k PrivateKey
	if err := parseKey(s, k[:], "private"); err != nil {
		return k, err
	}
	k.clamp()
	return k, nil
}

func parseKey(s string, dst []byte, kind string) error {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return fmt.Errorf("transport: %s key is not base64: %w", kind, err)
	}
	if len(b) != KeySize {
		return fmt.Errorf("transport: %s key has %d bytes, want %d", kind, len(b), KeySize)
	}
	copy(dst, b)
	return nil
}
