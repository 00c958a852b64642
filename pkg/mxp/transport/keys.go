package transport

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"log/slog"

	"golang.org/x/crypto/curve25519"
)

// PrivateKey is a static or ephemeral X25519 private key (clamped). It never prints:
// String, every fmt verb (%v, %+v, %#v, %s, %q, %x), slog, JSON and text marshalling show
// Redacted, so that a careless log line or a dumped Config cannot leak an identity. Reveal
// returns the base64 form, for the one place that must write it (a key file).
type PrivateKey [KeySize]byte

// PresharedKey is the optional symmetric key mixed into the handshake (Config.PresharedKey).
// Like PrivateKey it never prints; there is no way to format it.
type PresharedKey [KeySize]byte

// Redacted is what a PrivateKey or PresharedKey prints as, wherever it is printed (the
// same text as pkg/common/security.Redacted, which this module cannot import).
const Redacted = "[REDACTED]"

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

// Reveal formats the private key as standard base64 (44 characters), the form that
// ParsePrivateKey reads. It is the only way to print the key: call it only to write a key
// file.
func (k PrivateKey) Reveal() string { return base64.StdEncoding.EncodeToString(k[:]) }

// String implements fmt.Stringer: Redacted, never the key.
func (k PrivateKey) String() string { return Redacted }

// GoString implements fmt.GoStringer (%#v).
func (k PrivateKey) GoString() string { return "transport.PrivateKey(" + Redacted + ")" }

// Format implements fmt.Formatter so that every verb, %x and %q included, is redacted.
func (k PrivateKey) Format(f fmt.State, verb rune) { formatRedacted(f, verb, "transport.PrivateKey") }

// LogValue implements slog.LogValuer.
func (k PrivateKey) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalText implements encoding.TextMarshaler (JSON strings, YAML): Redacted. A key is
// written only through Reveal; text formats would round-trip it into logs and dumps.
func (k PrivateKey) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// String implements fmt.Stringer: Redacted, never the key.
func (k PresharedKey) String() string { return Redacted }

// GoString implements fmt.GoStringer (%#v).
func (k PresharedKey) GoString() string { return "transport.PresharedKey(" + Redacted + ")" }

// Format implements fmt.Formatter so that every verb is redacted.
func (k PresharedKey) Format(f fmt.State, verb rune) {
	formatRedacted(f, verb, "transport.PresharedKey")
}

// LogValue implements slog.LogValuer.
func (k PresharedKey) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalText implements encoding.TextMarshaler: Redacted.
func (k PresharedKey) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// formatRedacted writes Redacted for any verb: %#v as typeName(Redacted), %q quoted.
func formatRedacted(f fmt.State, verb rune, typeName string) {
	switch {
	case verb == 'v' && f.Flag('#'):
		fmt.Fprint(f, typeName+"("+Redacted+")")
	case verb == 'q':
		fmt.Fprintf(f, "%q", Redacted)
	default:
		fmt.Fprint(f, Redacted)
	}
}

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

// Format prints a Conn as its peer's public key and addresses, whatever the verb: its
// fields hold the configuration, keys included, which a verb that does not suit pointers
// (%s, %x, %d) would otherwise print raw.
func (c *Conn) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "transport.Conn{peer %v, %v → %v}", c.peer.public, c.LocalAddr(), c.RemoteAddr())
}

// Format prints a Listener as its public key and address, whatever the verb (see
// Conn.Format).
func (l *Listener) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "transport.Listener{%v at %v}", l.PublicKey(), l.Addr())
}
