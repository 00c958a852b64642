package edge

import (
	"fmt"
	cmetrics "github.com/mxp-mesh/mesh/pkg/common/metrics"
	"net/netip"
	"strings"
	"time"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/mxp"
	"github.com/mxp-mesh/mesh/pkg/mxp/transport"
)

// Config is the edge's configuration. The zero value of a field means its documented
// default (see Defaults and WithDefaults).
type Config struct {
	// Addr is the UDP address of the secure transport. Default ":9000"; "off" disables it.
	Addr string `yaml:"addr" flag:"addr" usage:"UDP address of the secure MXP transport (off to disable)"`
	// KeyFile holds the edge's X25519 private key (base64, one line); it is created with
	// a new key when missing. Default "mxp-edge.key".
	KeyFile string `yaml:"key_file" flag:"key-file" usage:"the edge's private key file (created when missing)"`
	// CompatAddr is the UDP address of the plaintext listener for the reference agents
	// SDK (one frame per datagram). Empty (the default) turns it off.
	CompatAddr string `yaml:"compat_addr" flag:"compat-addr" usage:"UDP address of the plaintext MXP listener (off when empty)"`
	// CompatAllowRemote lets CompatAddr bind a non-loopback address. Plaintext frames are
	// neither authenticated nor private, so the default (false) refuses anything but
	// 127.0.0.1 or ::1.
	CompatAllowRemote bool `yaml:"compat_allow_remote" flag:"compat-allow-remote" usage:"allow the plaintext listener on a non-loopback address"`
	// AllowKeys and AllowKeysFile are the allow-list of client public keys (standard
	// base64, as `mxp keygen` prints them; the file holds one per line, '#' comments).
	// When either is set, only the listed keys complete a handshake on the secure
	// transport (refusals are counted as handshake_failures{reason="peer_refused"});
	// when both are empty (the default) any key may connect. Set one in production.
	AllowKeys     []string `yaml:"allow_keys"`
	AllowKeysFile string   `yaml:"allow_keys_file" flag:"allow-keys-file" usage:"file of client public keys allowed on the secure transport, one per line (default: any key)"`
	// ID names this edge on the bus (stream subjects, logs). Default: a random id.
	ID string `yaml:"id"`

	// NATS is the bus URL (comma-separated for a cluster); empty starts an embedded
	// nats-server (useful only for trying the edge alone). Used by mxp-edge.
	NATS string `yaml:"nats" flag:"nats" usage:"NATS URL; empty starts an embedded server"`
	// EmbeddedNATS tunes the embedded server when NATS is empty.
	EmbeddedNATS bus.EmbeddedConfig `yaml:"embedded_nats"`
	// HTTP is the address of /metrics, /livez, /readyz and /debug/pprof. Empty disables
	// it. Default 127.0.0.1:9100. Used by mxp-edge.
	HTTP string `yaml:"http" flag:"http" usage:"HTTP address of metrics and health (empty: off)"`
	// HTTPLimits bound the HTTP server's clients: read (body), write and idle timeouts,
	// header size, connections (metrics.ServerLimits; zero = default). Read at start only.
	HTTPLimits cmetrics.ServerLimits `yaml:"http_limits"`
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string `yaml:"log_level" flag:"log-level" usage:"debug, info, warn or error" reload:"live"`
	// ShutdownTimeout bounds graceful shutdown. Default 20s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`

	// Limits are enforced per connection.
	Limits PeerLimits `yaml:"limits" reload:"live"`
	// Secure bounds what source addresses and client keys may cost the secure transport
	// (connections, unconfirmed handshakes, handshake rates). Read at start.
	Secure SecureLimits `yaml:"secure"`

	// DefaultCallTimeout applies to a Call whose timeout is 0. Default 30s.
	DefaultCallTimeout time.Duration `yaml:"default_call_timeout" reload:"live"`
	// MaxCallTimeout caps the timeout a Call may ask for. Default 5m.
	MaxCallTimeout time.Duration `yaml:"max_call_timeout" reload:"live"`
	// RegistryTimeout bounds a register, heartbeat or discover round trip. Default 5s.
	RegistryTimeout time.Duration `yaml:"registry_timeout" reload:"live"`
	// IdleTimeout ends a plaintext connection that sent nothing for this long (the
	// reference SDK heartbeats well within it). Default 90s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// DeadPeerTimeout closes a secure connection whose peer answered nothing for this long
	// while it owed an answer (unacknowledged packets, or a Call delivered and not yet
	// answered, for which the edge probes it every quarter of this); the Calls delivered
	// to it then fail with unreachable and its agents are deregistered at once. Default
	// 2s (transport.DefaultDeadPeerTimeout); negative: off (only idle_timeout ends it).
	DeadPeerTimeout time.Duration `yaml:"dead_peer_timeout"`

	// StreamWindow is the number of chunks a stream may have in flight between edges
	// before the sender waits for credit. Default 64.
	StreamWindow int `yaml:"stream_window"`
	// StreamIdleTimeout ends a stream that moved nothing for this long, and bounds how
	// long a sender waits for credit. Default 60s.
	StreamIdleTimeout time.Duration `yaml:"stream_idle_timeout"`

	// Services maps a well-known service name to the bus subject that answers Calls to
	// it. Defaults: the table of the services the mesh runs, bus.ServiceCallSubjects
	// (registry → mxp.registry.discover, inference → mxp.inference.chat); a Call to a
	// well-known service without an entry (tools, policy) is answered unreachable.
	Services map[string]string `yaml:"services"`
}

// PeerLimits bound what one connection may do.
type PeerLimits struct {
	// MaxMessageBytes is the largest frame accepted (header, payload and checksum).
	// Default 1 MiB; at most mxp.MaxFrameSize. The secure transport enforces it from a
	// frame's length prefix (transport.Config.MaxMessageSize): a larger frame is refused
	// before it is received, and answered with Error too_large naming its message id.
	MaxMessageBytes int `yaml:"max_message_bytes" reload:"live"`
	// MaxInFlight bounds the Calls (and register/heartbeat/discover requests) a
	// connection has waiting for an answer. Default 1024.
	MaxInFlight int `yaml:"max_in_flight" reload:"live"`
	// RatePerSecond and RateBurst bound the frames a connection may send (token bucket).
	// Defaults 20,000/s and 40,000; a negative rate disables the limit.
	RatePerSecond float64 `yaml:"rate_per_second" reload:"live"`
	RateBurst     int     `yaml:"rate_burst" reload:"live"`
	// QueueFrames bounds the frames of one connection waiting to be handled; beyond it a
	// frame is answered with Error unavailable. Default 4096.
	QueueFrames int `yaml:"queue_frames"`
	// MaxAgents bounds the agents one connection may register. Default 64.
	MaxAgents int `yaml:"max_agents" reload:"live"`
	// MaxAgentsPerAddress bounds the agents registered at once from one source address,
	// across all its connections on both transports (an IPv6 address counts by its /64).
	// Default 256.
	MaxAgentsPerAddress int `yaml:"max_agents_per_address" reload:"live"`
	// MaxSubscriptions bounds the topic subscriptions of one connection. Default 64.
	MaxSubscriptions int `yaml:"max_subscriptions" reload:"live"`
	// MaxStreams bounds the streams one connection has open. Default 64.
	MaxStreams int `yaml:"max_streams" reload:"live"`
}

// SecureLimits are the secure transport's admission limits (pkg/mxp/transport Config;
// docs/protocol.md §2.3). A source is an IPv4 address or an IPv6 /64. Zero means the
// default; a negative handshake rate disables that token bucket.
type SecureLimits struct {
	// MaxConnections caps the secure connections, confirmed or not. Default 10,000.
	MaxConnections int `yaml:"max_connections" flag:"secure-max-connections" usage:"secure transport: cap on connections"`
	// MaxConnectionsPerSource caps the connections of one source address. Default 1024.
	MaxConnectionsPerSource int `yaml:"max_connections_per_source" flag:"secure-max-connections-per-source" usage:"secure transport: cap on connections per source address"`
	// MaxPendingHandshakes caps the connections answered but not yet confirmed by their
	// first data packet. Default 4096.
	MaxPendingHandshakes int `yaml:"max_pending_handshakes"`
	// MaxPendingPerSource caps the unconfirmed connections of one source. Default 64.
	MaxPendingPerSource int `yaml:"max_pending_per_source"`
	// HandshakeRatePerSource and HandshakeBurstPerSource: the token bucket of each source
	// for initiations with a valid cookie, applied while the transport is under load.
	// Defaults 50/s and 50.
	HandshakeRatePerSource  float64 `yaml:"handshake_rate_per_source"`
	HandshakeBurstPerSource int     `yaml:"handshake_burst_per_source"`
	// HandshakeRatePerKey and HandshakeBurstPerKey: the token bucket of each client key
	// for authenticated initiations, applied while the transport is under load.
	// Defaults 50/s and 50.
	HandshakeRatePerKey  float64 `yaml:"handshake_rate_per_key"`
	HandshakeBurstPerKey int     `yaml:"handshake_burst_per_key"`
	// RecvBudgetBytes bounds the memory the secure transport holds for all connections
	// together: partial and received frames not yet handled, out-of-order data, queued
	// datagrams (transport.Config.RecvBudget). Over it, new data is dropped unacknowledged
	// (the sender retransmits) and counted in mxp_edge_transport_recv_dropped_total.
	// A frame is reserved whole at its length prefix and then always completes;
	// out-of-order data may fill half of it. Full for a second while data is refused: the
	// connection holding the most is closed (mxp_edge_transport_recv_evictions_total).
	// Default 64 MiB; at least 2 × (limits.max_message_bytes + 8).
	RecvBudgetBytes int `yaml:"recv_budget_bytes"`
}

// transportConfig is the secure listener's configuration from these limits and the
// edge's idle timeout.
func (s SecureLimits) transportConfig(idle time.Duration) transport.Config {
	return transport.Config{
		IdleTimeout:             idle,
		MaxConnections:          s.MaxConnections,
		MaxConnectionsPerSource: s.MaxConnectionsPerSource,
		MaxPendingHandshakes:    s.MaxPendingHandshakes,
		MaxPendingPerSource:     s.MaxPendingPerSource,
		HandshakeRatePerSource:  s.HandshakeRatePerSource,
		HandshakeBurstPerSource: s.HandshakeBurstPerSource,
		HandshakeRatePerKey:     s.HandshakeRatePerKey,
		HandshakeBurstPerKey:    s.HandshakeBurstPerKey,
		RecvBudget:              s.RecvBudgetBytes,
	}
}

// Defaults returns the default configuration.
func Defaults() Config {
	return Config{Addr: ":9000", HTTP: "127.0.0.1:9100", LogLevel: "info", ShutdownTimeout: 20 * time.Second}.WithDefaults()
}

// WithDefaults fills zero fields with their defaults.
func (c Config) WithDefaults() Config {
	if c.Addr == "" {
		c.Addr = ":9000"
	}
	if c.KeyFile == "" {
		c.KeyFile = "mxp-edge.key"
	}
	if c.DefaultCallTimeout <= 0 {
		c.DefaultCallTimeout = 30 * time.Second
	}
	if c.MaxCallTimeout <= 0 {
		c.MaxCallTimeout = 5 * time.Minute
	}
	if c.RegistryTimeout <= 0 {
		c.RegistryTimeout = 5 * time.Second
	}
	if c.Secure.RecvBudgetBytes <= 0 {
		c.Secure.RecvBudgetBytes = transport.DefaultRecvBudget
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 90 * time.Second
	}
	if c.DeadPeerTimeout == 0 {
		c.DeadPeerTimeout = transport.DefaultDeadPeerTimeout
	}
	if c.StreamWindow <= 0 {
		c.StreamWindow = 64
	}
	if c.StreamIdleTimeout <= 0 {
		c.StreamIdleTimeout = 60 * time.Second
	}
	l := &c.Limits
	if l.MaxMessageBytes <= 0 {
		l.MaxMessageBytes = 1 << 20
	}
	if l.MaxInFlight <= 0 {
		l.MaxInFlight = 1024
	}
	if l.RatePerSecond == 0 {
		l.RatePerSecond = 20_000
	}
	if l.RateBurst <= 0 {
		l.RateBurst = 40_000
	}
	if l.QueueFrames <= 0 {
		l.QueueFrames = 4096
	}
	if l.MaxAgents <= 0 {
		l.MaxAgents = 64
	}
	if l.MaxAgentsPerAddress <= 0 {
		l.MaxAgentsPerAddress = 256
	}
	if l.MaxSubscriptions <= 0 {
		l.MaxSubscriptions = 64
	}
	if l.MaxStreams <= 0 {
		l.MaxStreams = 64
	}
	sl := &c.Secure
	for _, f := range []struct {
		v *int
		d int
	}{
		{&sl.MaxConnections, transport.DefaultMaxConnections},
		{&sl.MaxConnectionsPerSource, transport.DefaultMaxConnectionsPerSource},
		{&sl.MaxPendingHandshakes, transport.DefaultMaxPendingHandshakes},
		{&sl.MaxPendingPerSource, transport.DefaultMaxPendingPerSource},
		{&sl.HandshakeBurstPerSource, transport.DefaultHandshakeBurstPerSource},
		{&sl.HandshakeBurstPerKey, transport.DefaultHandshakeBurstPerKey},
	} {
		if *f.v <= 0 {
			*f.v = f.d
		}
	}
	if sl.HandshakeRatePerSource == 0 {
		sl.HandshakeRatePerSource = transport.DefaultHandshakeRatePerSource
	}
	if sl.HandshakeRatePerKey == 0 {
		sl.HandshakeRatePerKey = transport.DefaultHandshakeRatePerKey
	}
	svc := bus.ServiceCallSubjects()
	for k, v := range c.Services {
		svc[strings.ToLower(k)] = v
	}
	c.Services = svc
	return c
}

// Validate reports the first bad setting, naming its key.
func (c Config) Validate() error {
	if c.Limits.MaxMessageBytes > mxp.MaxFrameSize {
		return fmt.Errorf("limits.max_message_bytes: %d is over the frame maximum %d", c.Limits.MaxMessageBytes, mxp.MaxFrameSize)
	}
	if c.Limits.MaxMessageBytes < mxp.FrameOverhead {
		return fmt.Errorf("limits.max_message_bytes: %d is under the frame overhead %d", c.Limits.MaxMessageBytes, mxp.FrameOverhead)
	}
	if c.Secure.RecvBudgetBytes > 0 && c.Secure.RecvBudgetBytes < 2*(c.Limits.MaxMessageBytes+8) {
		return fmt.Errorf("secure.recv_budget_bytes: %d is under 2 × (limits.max_message_bytes %d + 8): a frame is held whole before it is handled, and new frames may use half the budget", c.Secure.RecvBudgetBytes, c.Limits.MaxMessageBytes)
	}
	if c.CompatAddr != "" && !c.CompatAllowRemote {
		if err := checkLoopback(c.CompatAddr); err != nil {
			return fmt.Errorf("compat_addr: %w", err)
		}
	}
	if _, err := c.allowPeer(); err != nil {
		return err
	}
	for name := range c.Services {
		if _, ok := mxp.ServiceByName(name); !ok {
			return fmt.Errorf("services.%s: not a well-known service (%s)", name, strings.Join(mxp.ServiceNames(), ", "))
		}
	}
	return nil
}

// checkLoopback accepts host:port addresses whose host is a loopback IP or "localhost".
func checkLoopback(addr string) error {
	host, _, ok := strings.Cut(addr, "]:")
	if ok {
		host = strings.TrimPrefix(host, "[")
	} else {
		i := strings.LastIndexByte(addr, ':')
		if i < 0 {
			return fmt.Errorf("%q is not host:port", addr)
		}
		host = addr[:i]
	}
	if host == "localhost" {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return fmt.Errorf("%q is not a loopback address; the plaintext listener is loopback-only unless compat_allow_remote is set", addr)
	}
	return nil
}
