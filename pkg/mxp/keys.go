package mxp

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/mxp-mesh/mesh/pkg/mxp/transport"
)

// PrivateKey is a static X25519 private key: an MXP node's identity.
type PrivateKey = transport.PrivateKey

// PublicKey is an X25519 public key, formatted as base64 like WireGuard's.
type PublicKey = transport.PublicKey

// GeneratePrivateKey returns a new private key; its PublicKey method gives the identity.
func GeneratePrivateKey() (PrivateKey, error) { return transport.GeneratePrivateKey() }

// ParsePublicKey parses a base64 public key.
func ParsePublicKey(s string) (PublicKey, error) {
	return transport.ParsePublicKey(strings.TrimSpace(s))
}

// ParsePrivateKey parses a base64 private key.
func ParsePrivateKey(s string) (PrivateKey, error) {
	return transport.ParsePrivateKey(strings.TrimSpace(s))
}

// LoadPrivateKey reads a key file written by SavePrivateKey (one base64 line). It refuses
// a file that group or others may read.
func LoadPrivateKey(path string) (PrivateKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return PrivateKey{}, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return PrivateKey{}, fmt.Errorf("mxp: key file %s has mode %v; want 0600", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return PrivateKey{}, err
	}
	k, err := ParsePrivateKey(string(b))
	if err != nil {
		return PrivateKey{}, fmt.Errorf("mxp: key file %s: %w", path, err)
	}
	return k, nil
}

// ErrKeyFileExists is returned by SavePrivateKey rather than overwrite an identity.
var ErrKeyFileExists = errors.New("mxp: key file already exists")

// SavePrivateKey writes k as one base64 line to a new file with mode 0600.
func SavePrivateKey(path string, k PrivateKey) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%w: %s", ErrKeyFileExists, path)
		}
		return err
	}
	if _, err := f.WriteString(k.Reveal() + "\n"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
