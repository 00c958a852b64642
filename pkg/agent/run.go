package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// Run connects to the edge named by Config.EdgeAddr and Config.EdgeKey over the secure
// MXP transport, with the agent's key from Config.KeyFile, and runs the agent on that
// connection (see RunConn) until ctx ends, Retire is called or the connection fails.
func (a *Agent) Run(ctx context.Context) error {
	if a.cfg.EdgeAddr == "" || a.cfg.EdgeKey == "" {
		return errors.New("agent: Run needs Config.EdgeAddr and Config.EdgeKey (the edge's public key)")
	}
	edgeKey, err := mxp.ParsePublicKey(a.cfg.EdgeKey)
	if err != nil {
		return fmt.Errorf("agent: Config.EdgeKey: %w", err)
	}
	key, err := loadOrCreateKey(a.cfg.KeyFile)
	if err != nil {
		return err
	}
	conn, err := mxp.Dial(ctx, a.cfg.EdgeAddr, mxp.Options{PrivateKey: key, ServerKey: edgeKey})
	if err != nil {
		return fmt.Errorf("agent: connecting to the edge at %s: %w", a.cfg.EdgeAddr, err)
	}
	a.log.Info("agent: connected", "edge", a.cfg.EdgeAddr, "public_key", key.PublicKey().String())
	return a.RunConn(ctx, conn)
}

// loadOrCreateKey reads the agent's private key from path, creating it (mode 0600, in a
// 0700 directory) when the file does not exist. An empty path gives a fresh key.
func loadOrCreateKey(path string) (mxp.PrivateKey, error) {
	if path == "" {
		return mxp.GeneratePrivateKey()
	}
	key, err := mxp.LoadPrivateKey(path)
	if err == nil {
		return key, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return key, fmt.Errorf("agent: key file: %w", err)
	}
	if key, err = mxp.GeneratePrivateKey(); err != nil {
		return key, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return key, fmt.Errorf("agent: key directory: %w", err)
	}
	if err := mxp.SavePrivateKey(path, key); err != nil {
		if errors.Is(err, mxp.ErrKeyFileExists) { // created meanwhile: use that one
			return loadOrCreateKey(path)
		}
		return key, fmt.Errorf("agent: key file: %w", err)
	}
	return key, nil
}

var _ FrameConn = (*mxp.Conn)(nil)
