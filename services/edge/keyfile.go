package edge

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/mxp-mesh/mesh/pkg/mxp/transport"
)

// LoadOrCreateKey reads the X25519 private key at path (one line of standard base64, as
// WireGuard writes keys), or, when the file does not exist, generates a key and writes it
// there with mode 0600 (creating the directory with 0700). created reports which.
func LoadOrCreateKey(path string) (key transport.PrivateKey, created bool, err error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		key, err = transport.ParsePrivateKey(strings.TrimSpace(string(b)))
		if err != nil {
			return key, false, fmt.Errorf("edge: key file %s: %w", path, err)
		}
		return key, false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return key, false, fmt.Errorf("edge: key file: %w", err)
	}
	key, err = transport.GeneratePrivateKey()
	if err != nil {
		return key, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return key, false, fmt.Errorf("edge: key directory: %w", err)
	}
	// Written whole to a temporary file and linked into place, so that a concurrent
	// reader (another command starting at the same moment, or the 64 connections that
	// `mxp agent echo --count` sets up at once) never reads a created but still empty file;
	// the link fails if the file exists, so a key is never replaced.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".key-*") // mode 0600
	if err != nil {
		return key, false, fmt.Errorf("edge: key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(key.Reveal() + "\n"); err != nil {
		tmp.Close()
		return key, false, fmt.Errorf("edge: writing key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return key, false, fmt.Errorf("edge: writing key file: %w", err)
	}
	switch err := os.Link(tmp.Name(), path); {
	case err == nil:
		return key, true, nil
	case errors.Is(err, fs.ErrExist): // created meanwhile by another process: use it
		return LoadOrCreateKey(path)
	}
	// A file system without hard links: create the file exclusively and write it.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return LoadOrCreateKey(path)
		}
		return key, false, fmt.Errorf("edge: key file: %w", err)
	}
	if _, err := f.WriteString(key.Reveal() + "\n"); err != nil {
		f.Close()
		return key, false, fmt.Errorf("edge: writing key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return key, false, err
	}
	return key, true, nil
}
