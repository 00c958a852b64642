package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mxp-mesh/mesh/pkg/agent"
	"github.com/mxp-mesh/mesh/pkg/mxp"
	"github.com/mxp-mesh/mesh/pkg/mxp/transport"
	"github.com/mxp-mesh/mesh/services/edge"
)

// The data directory (default ./.mxp) is how `mxp dev` tells the client commands where the
// mesh is. Its files (docs/edge.md, "The data directory"):
//
//	edge.key    the edge's X25519 private key, one line of base64 (mode 0600); created by
//	            the first `mxp dev`, reused after
//	edge.json   written by `mxp dev` at start: EdgeInfo below (mode 0644)
//	client.key  the client commands' own X25519 key, created on first use (mode 0600)
const (
	defaultDataDir = ".mxp"
	edgeKeyFile    = "edge.key"
	edgeInfoFile   = "edge.json"
	clientKeyFile  = "client.key"
)

// EdgeInfo is edge.json: the endpoints of a running `mxp dev`.
type EdgeInfo struct {
	EdgeAddr   string    `json:"edge_addr"`             // secure transport, dialable (host:port)
	PublicKey  string    `json:"public_key"`            // the edge's public key, base64
	CompatAddr string    `json:"compat_addr,omitempty"` // plaintext listener, when on
	HTTPAddr   string    `json:"http_addr"`             // base URL of /metrics, /readyz and the APIs
	NATSURL    string    `json:"nats_url,omitempty"`    // the embedded bus, when it listens
	PID        int       `json:"pid"`
	StartedAt  time.Time `json:"started_at"`
}

// dataDirFlag is " --data-dir DIR" for a hint that names a command to run next, or ""
// when dir is the default: a hint without it would send the reader to ./.mxp, another
// mesh or none, when they are using another directory.
func dataDirFlag(dir string) string {
	if dir == "" || filepath.Clean(dir) == defaultDataDir {
		return ""
	}
	if strings.ContainsAny(dir, " \t'\"$`\\") {
		return " --data-dir '" + strings.ReplaceAll(dir, "'", `'\''`) + "'"
	}
	return " --data-dir " + dir
}

func writeEdgeInfo(dir string, info EdgeInfo) error {
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, edgeInfoFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, edgeInfoFile))
}

func readEdgeInfo(dir string) (EdgeInfo, error) {
	var info EdgeInfo
	b, err := os.ReadFile(filepath.Join(dir, edgeInfoFile))
	if errors.Is(err, fs.ErrNotExist) {
		return info, fmt.Errorf("no mesh found in %s (start one with `mxp dev%s`; for another mesh set %s and %s, or pass --edge and --edge-key)", dir, dataDirFlag(dir), envEdge, envEdgeKey)
	}
	if err != nil {
		return info, err
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return info, fmt.Errorf("%s: %w", filepath.Join(dir, edgeInfoFile), err)
	}
	if info.PID > 0 && processGone(info.PID) {
		return info, fmt.Errorf("the mesh in %s (mxp dev, pid %d) is not running; start it with `mxp dev%s`", dir, info.PID, dataDirFlag(dir))
	}
	return info, nil
}

// dialable turns a listen address into one a client can dial: an unspecified host
// (":9000", "0.0.0.0:9000", "[::]:9000") becomes loopback.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// The environment the client commands read, so that a mesh that is not a local `mxp dev`
// (Docker Compose, Kubernetes) is reached with no flags: `make compose-up` prints the
// export lines. A flag overrides its variable; both override the data directory.
const (
	envEdge    = agent.EnvEdge    // --edge
	envEdgeKey = agent.EnvEdgeKey // --edge-key
)

// defaultDialTimeout bounds the handshake of a command whose context has no deadline
// (mxp agent echo); a command with --timeout bounds it with that instead.
const defaultDialTimeout = 10 * time.Second

// handshakeTimeout is the transport's own bound on a handshake (zero: its default,
// transport.DefaultHandshakeTimeout); a variable so that tests reach the "nothing answers"
// path of a command with no --timeout without waiting the default out.
var handshakeTimeout time.Duration

// connFlags are the flags every client command shares.
type connFlags struct {
	dataDir string
	edge    string
	edgeKey string
	compat  string
}

func (c *connFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.dataDir, "data-dir", defaultDataDir, "the data directory `DIR` of mxp dev (edge.json, keys)")
	fs.StringVar(&c.edge, "edge", os.Getenv(envEdge), "edge address (secure transport); default $"+envEdge+", else from the data directory")
	fs.StringVar(&c.edgeKey, "edge-key", os.Getenv(envEdgeKey), "the edge's public key (base64); default $"+envEdgeKey+", else from the data directory")
	fs.StringVar(&c.compat, "compat", "", "use the edge's plaintext listener at this address instead")
}

// edgeTarget is the edge the flags, the environment or the data directory name: its
// plaintext listener (compat set), or its secure transport at addr with public key key,
// which a client dials with the private key in keyFile.
type edgeTarget struct {
	compat    string
	addr, key string
	edgeKey   mxp.PublicKey
	keyFile   string
	clientKey mxp.PrivateKey
	where     string // for messages: the address, "(plaintext)" for compat
	dataDir   string // the data directory, for hints
	from      string // where the address and key came from
}

// target resolves the flags, the environment and the data directory into the edge to
// use. For the secure transport it creates the client key file when missing (whole,
// before any reader: see edge.LoadOrCreateKey), unless the edge comes from the
// environment or flags and the data directory does not exist: then the key is this
// run's own and nothing is created. With only one of address and key given and no
// edge.json, the error names the one missing.
func (c *connFlags) target() (edgeTarget, error) {
	if c.compat != "" {
		return edgeTarget{compat: c.compat, where: c.compat + " (plaintext)", dataDir: c.dataDir}, nil
	}
	addr, keyText := c.edge, c.edgeKey
	from := "--edge/$" + envEdge + " and --edge-key/$" + envEdgeKey
	if keyText != "" {
		from = "--edge-key"
		if keyText == os.Getenv(envEdgeKey) {
			from = "$" + envEdgeKey
		}
	}
	if addr == "" || keyText == "" {
		info, err := readEdgeInfo(c.dataDir)
		if err != nil && (addr != "" || keyText != "") {
			if _, statErr := os.Stat(filepath.Join(c.dataDir, edgeInfoFile)); errors.Is(statErr, fs.ErrNotExist) {
				missing := "$" + envEdgeKey + " (or --edge-key) is missing: the edge's address is set but not its public key"
				if addr == "" {
					missing = "$" + envEdge + " (or --edge) is missing: the edge's public key is set but not its address"
				}
				return edgeTarget{}, fmt.Errorf("%s, and %s has no edge.json to read it from", missing, c.dataDir)
			}
		}
		if err != nil {
			return edgeTarget{}, err
		}
		if keyText == "" {
			from = filepath.Join(c.dataDir, edgeInfoFile)
		}
		if addr == "" {
			addr = info.EdgeAddr
		}
		if keyText == "" {
			keyText = info.PublicKey
		}
		if addr == "" && info.CompatAddr != "" {
			return edgeTarget{compat: info.CompatAddr, where: info.CompatAddr + " (plaintext)", dataDir: c.dataDir}, nil
		}
	}
	keyText = strings.TrimSpace(keyText)
	edgeKey, err := mxp.ParsePublicKey(keyText)
	if err != nil {
		return edgeTarget{}, fmt.Errorf("edge key: %w", err)
	}
	// The client's key lives in the data directory; a client pointed at a mesh by the
	// environment or flags alone, with no data directory, uses a key of its own run and
	// creates nothing in the working directory (the edge admits any key unless it keeps
	// an allow-list, and then the operator hands out a key file: --data-dir DIR).
	keyFile := filepath.Join(c.dataDir, clientKeyFile)
	var key mxp.PrivateKey
	if _, statErr := os.Stat(c.dataDir); errors.Is(statErr, fs.ErrNotExist) && c.edge != "" && c.edgeKey != "" {
		keyFile = ""
		if key, err = mxp.GeneratePrivateKey(); err != nil {
			return edgeTarget{}, err
		}
	} else if key, _, err = edge.LoadOrCreateKey(keyFile); err != nil {
		return edgeTarget{}, err
	}
	return edgeTarget{addr: addr, key: keyText, edgeKey: edgeKey, keyFile: keyFile, clientKey: key, where: addr, from: from, dataDir: c.dataDir}, nil
}

// dial connects to the edge the flags, the environment or the data directory name (see
// edgeTarget.dial).
func (c *connFlags) dial(ctx context.Context) (*mxp.Conn, string, error) {
	t, err := c.target()
	if err != nil {
		return nil, "", err
	}
	return t.dial(ctx)
}

// dial connects to the edge t names. The handshake ends by ctx's deadline
// (defaultDialTimeout when it has none) or the transport's handshake timeout, whichever
// is first; when nothing answers by then, or the host refuses, the error is a
// nothingAnswersError naming the address, where the key came from, and what to check
// (an edge that holds another key than the pinned one cannot read the handshake and
// stays silent, just as an address where nothing listens).
func (t edgeTarget) dial(ctx context.Context) (*mxp.Conn, string, error) {
	if t.compat != "" {
		cl, err := mxp.DialPlaintext(ctx, t.compat)
		return cl, t.where, err
	}
	dctx, cancel := ctx, context.CancelFunc(func() {})
	if _, ok := ctx.Deadline(); !ok {
		dctx, cancel = context.WithTimeout(ctx, defaultDialTimeout)
	}
	defer cancel()
	start := time.Now()
	cl, err := mxp.Dial(dctx, t.addr, mxp.Options{PrivateKey: t.clientKey, ServerKey: t.edgeKey,
		Transport: transport.Config{HandshakeTimeout: handshakeTimeout}})
	switch {
	case err == nil:
		return cl, t.where, nil
	case !errors.Is(ctx.Err(), context.Canceled) &&
		(errors.Is(dctx.Err(), context.DeadlineExceeded) || errors.Is(err, transport.ErrHandshakeTimeout) ||
			mxp.ErrorCodeFor(err) == mxp.CodeUnreachable):
		return nil, "", &nothingAnswersError{Addr: t.addr, After: time.Since(start), From: t.from, Err: err}
	}
	return nil, "", fmt.Errorf("connecting to the edge at %s: %w", t.addr, err)
}

// nothingAnswersError is a handshake with the edge that got no answer: nothing listens
// at Addr, or something does that cannot read the handshake (another edge, whose key is
// not the one pinned).
type nothingAnswersError struct {
	Addr  string
	After time.Duration
	From  string // where the address and key came from
	Err   error
}

func (e *nothingAnswersError) Error() string {
	return fmt.Sprintf("nothing answers at %s (after %v): check that the mesh is running (mxp dev, or make compose-up) "+
		"and that the edge address and key (key from %s) are its current ones: an edge whose key is not that one "+
		"(wrong, or stale after the edge made a new one) does not answer either", e.Addr, e.After.Round(time.Millisecond), e.From)
}

func (e *nothingAnswersError) Unwrap() error { return e.Err }

// servicesServed names the well-known services (mxp.ServiceNames) that this repository
// ships and `mxp dev` runs, for help and error text: the protocol also reserves ids for
// services that nothing answers yet (tools, policy), which a newcomer must not be sent to.
// TestServicesServed keeps it equal to the services/ folders that are well-known services.
const servicesServed = "registry, inference"

// resolveTarget turns --to into an id: a UUID, a well-known service name (mxp.ServiceByName)
// or the name of a registered agent (the first online one of that name).
// A name belongs to one identity (the registry refuses a second owner while a lease
// lives); if the agents of the name still show more than one owner (records from before
// owners existed, or two edges racing), the name is refused as ambiguous rather than
// resolved to whichever id sorts first: the caller must pick an id.
func resolveTarget(ctx context.Context, cl *mxp.Conn, to string) (mxp.AgentID, error) {
	if id, err := mxp.ParseAgentID(to); err == nil {
		return id, nil
	}
	if id, ok := mxp.ServiceByName(to); ok {
		return id, nil
	}
	// The exact-name filter, served from the registry's name index: lookalike names
	// (to plus anything) cannot fill the page and hide the agent or its other owners.
	found, err := cl.Discover(ctx, mxp.DiscoverRequest{Name: to, Limit: mxp.MaxDiscoverLimit})
	if err != nil {
		return mxp.AgentID{}, fmt.Errorf("looking up agent %q: %w", to, err)
	}
	return pickByName(found.Agents, to)
}

// pickByName chooses the agent named name among agents: an online one first, else any;
// an error when none has the name or when their owners differ.
func pickByName(agents []mxp.AgentRecord, name string) (mxp.AgentID, error) {
	var online, fallback *mxp.AgentRecord
	owners := map[string]bool{}
	for i := range agents {
		a := &agents[i]
		if a.Name != name {
			continue
		}
		owners[a.Owner] = true
		if online == nil && (a.Status == mxp.StatusOnline || a.Status == "") {
			online = a
		}
		if fallback == nil {
			fallback = a
		}
	}
	if len(owners) > 1 {
		return mxp.AgentID{}, fmt.Errorf("agent name %q is held by %d different identities; call one by its id (see `mxp agents`)", name, len(owners))
	}
	if online != nil {
		return online.ID, nil
	}
	if fallback != nil {
		return fallback.ID, nil
	}
	return mxp.AgentID{}, fmt.Errorf("no agent, service or agent id %q (services: %s; see `mxp agents`)", name, servicesServed)
}

// stringsFlag is a repeatable string flag.
type stringsFlag []string

func (s *stringsFlag) String() string { return strings.Join(*s, ",") }
func (s *stringsFlag) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*s = append(*s, p)
		}
	}
	return nil
}
