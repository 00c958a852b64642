package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/mxp-mesh/mesh/pkg/mxp"
	"github.com/mxp-mesh/mesh/pkg/mxp/transport"
)

// The environment Run reads when Config leaves the edge unset: the export lines of `make
// compose-up` (and of any deployment that names its edge) set both, so that every agent
// built on this package reaches that mesh with no flags. The mxp CLI reads the same two.
const (
	EnvEdge    = "MXP_EDGE"     // the edge's UDP address (Config.EdgeAddr)
	EnvEdgeKey = "MXP_EDGE_KEY" // the edge's public key, base64 (Config.EdgeKey)
)

// Run connects to the edge over the secure MXP transport, with the agent's key from
// Config.KeyFile, and runs the agent (see RunConn) until ctx ends or Retire is called.
// The edge is Config.EdgeAddr and Config.EdgeKey; each that is empty defaults to its
// variable ($MXP_EDGE, $MXP_EDGE_KEY), and what is still missing is read from
// DataDir/edge.json (a running `mxp dev`). When that file does not exist either, the
// error names what is missing (the key when only the address was given, and so on).
// When the connection is lost (the edge restarted, the network failed), Run connects
// again with backoff and jitter, registers again and renews its topic subscriptions;
// calls in flight at that moment fail with ErrLinkClosed. Only the first connection
// attempt's failure is returned.
func (a *Agent) Run(ctx context.Context) error {
	addr, keyText, err := resolveEdge(a.cfg)
	if err != nil {
		return err
	}
	edgeKey, err := mxp.ParsePublicKey(keyText)
	if err != nil {
		return fmt.Errorf("agent: the edge key (Config.EdgeKey or $%s): %w", EnvEdgeKey, err)
	}
	key, err := loadOrCreateKey(a.cfg.KeyFile)
	if err != nil {
		return err
	}
	return a.runRedialing(ctx, dialer(addr, mxp.Options{PrivateKey: key, ServerKey: edgeKey,
		Transport: transport.Config{HandshakeTimeout: a.cfg.HandshakeTimeout}}), addr, key.PublicKey().String())
}

// resolveEdge is the edge's address and key for cfg: its fields, else the environment,
// else the data directory's edge.json (see Run).
func resolveEdge(cfg Config) (addr, key string, err error) {
	addr, key = cfg.EdgeAddr, strings.TrimSpace(cfg.EdgeKey)
	if addr == "" {
		addr = os.Getenv(EnvEdge)
	}
	if key == "" {
		key = strings.TrimSpace(os.Getenv(EnvEdgeKey))
	}
	if addr != "" && key != "" {
		return addr, key, nil
	}
	info, err := readEdgeInfo(cfg.DataDir)
	if errors.Is(err, fs.ErrNotExist) && (addr != "" || key != "") {
		missing := "the edge's address: set $" + EnvEdge + " (or Config.EdgeAddr)"
		if key == "" {
			missing = "the edge's public key: set $" + EnvEdgeKey + " (or Config.EdgeKey)"
		}
		return "", "", fmt.Errorf("agent: %s is missing (%s has no edge.json to read it from either)", missing, dataDirOrDefault(cfg.DataDir))
	}
	if err != nil {
		return "", "", err
	}
	if addr == "" {
		addr = info.EdgeAddr
	}
	if key == "" {
		key = info.PublicKey
	}
	return addr, key, nil
}

// runRedialing runs the agent over connections from dial, dialling again whenever the
// connection is lost, until ctx ends or the agent is retired.
func (a *Agent) runRedialing(ctx context.Context, dial func(context.Context) (FrameConn, error), addr, pub string) error {
	self, err := mxp.ParseAgentID(a.cfg.ID)
	if err != nil {
		return err
	}
	r, err := newRedialer(ctx, dial, self, a.log)
	if err != nil {
		return err
	}
	a.log.Info("agent: connected", "edge", addr, "public_key", pub)
	a.out.Store(outHolder{r})
	return a.serve(ctx, r)
}

// DefaultDataDir is where `mxp dev` writes edge.json, and where Run looks for it.
const DefaultDataDir = ".mxp"

// edgeInfo is the part of DataDir/edge.json (written by `mxp dev`) that an agent needs.
type edgeInfo struct {
	EdgeAddr  string `json:"edge_addr"`
	PublicKey string `json:"public_key"`
}

func dataDirOrDefault(dir string) string {
	if dir == "" {
		return DefaultDataDir
	}
	return dir
}

func readEdgeInfo(dir string) (edgeInfo, error) {
	dir = dataDirOrDefault(dir)
	path := filepath.Join(dir, "edge.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return edgeInfo{}, fmt.Errorf("agent: no edge configured and no mesh found in %s (start one with `mxp dev`, or set $%s and $%s, or Config.EdgeAddr and Config.EdgeKey): %w", dir, EnvEdge, EnvEdgeKey, err)
	}
	var info edgeInfo
	if err := json.Unmarshal(b, &info); err != nil || info.EdgeAddr == "" || info.PublicKey == "" {
		return edgeInfo{}, fmt.Errorf("agent: %s does not name the edge's address and public key", path)
	}
	return info, nil
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
