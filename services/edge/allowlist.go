package edge

import (
	"fmt"
	"os"
	"strings"

	"github.com/mxp-mesh/mesh/pkg/mxp/transport"
)

// ParseAllowKeys reads an allow-list of client public keys: one standard-base64 X25519
// key per line (as `mxp keygen` prints them); blank lines and text after '#' are
// ignored. It fails on the first line that is not a key, naming it; an empty result is
// not an error (the caller decides what an empty list means).
func ParseAllowKeys(text string) ([]transport.PublicKey, error) {
	var keys []transport.PublicKey
	for i, line := range strings.Split(text, "\n") {
		if c := strings.IndexByte(line, '#'); c >= 0 {
			line = line[:c]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, err := transport.ParsePublicKey(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// allowPeer builds the secure transport's AllowPeer from AllowKeys and AllowKeysFile:
// nil (any key may connect) when both are empty; otherwise only the listed keys. A file
// that is set but names no key is an error, so that a truncated file never opens the
// edge to every key.
func (c Config) allowPeer() (func(transport.PublicKey) bool, error) {
	if len(c.AllowKeys) == 0 && c.AllowKeysFile == "" {
		return nil, nil
	}
	var keys []transport.PublicKey
	for i, s := range c.AllowKeys {
		k, err := transport.ParsePublicKey(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("allow_keys[%d]: %w", i, err)
		}
		keys = append(keys, k)
	}
	if c.AllowKeysFile != "" {
		b, err := os.ReadFile(c.AllowKeysFile)
		if err != nil {
			return nil, fmt.Errorf("allow_keys_file: %w", err)
		}
		fk, err := ParseAllowKeys(string(b))
		if err != nil {
			return nil, fmt.Errorf("allow_keys_file %s: %w", c.AllowKeysFile, err)
		}
		if len(fk) == 0 {
			return nil, fmt.Errorf("allow_keys_file %s: no key in the file", c.AllowKeysFile)
		}
		keys = append(keys, fk...)
	}
	allowed := make(map[transport.PublicKey]struct{}, len(keys))
	for _, k := range keys {
		allowed[k] = struct{}{}
	}
	return func(k transport.PublicKey) bool { _, ok := allowed[k]; return ok }, nil
}
