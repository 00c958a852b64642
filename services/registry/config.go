package registry

import (
	"errors"
	"github.com/mxp-mesh/mesh/pkg/common/metrics"
	"strings"
	"time"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/common/config"
	"github.com/mxp-mesh/mesh/pkg/common/security"
	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// Config is the registry's configuration. DefaultConfig documents every default; each
// key is also MXP_REGISTRY_<KEY> in the environment, and the tagged ones are flags.
type Config struct {
	// NATS is the bus URL (comma-separated for a cluster). Empty starts an embedded
	// nats-server in process.
	NATS string `yaml:"nats" flag:"nats" usage:"NATS URL; empty starts an embedded server"`
	// Store is "memory" (default) or a Redis URL (redis://[user:pass@]host:port/db,
	// rediss:// for TLS) shared by every replica.
	Store string `yaml:"store" flag:"store" usage:"memory or redis://host:port/db"`
	// HTTP is the listen address of /metrics, /livez, /readyz, /debug/pprof and the
	// /v1/agents read API. Empty disables HTTP. Default 127.0.0.1:9101.
	HTTP string `yaml:"http" flag:"http" usage:"HTTP listen address for metrics, health and /v1/agents"`
	// HTTPLimits bound the HTTP server's clients: read (body), write and idle timeouts,
	// header size, connections (metrics.ServerLimits; zero = default). Read at start only.
	HTTPLimits metrics.ServerLimits `yaml:"http_limits"`
	// Lease is how long a registration lives without a heartbeat. Default 30s.
	Lease time.Duration `yaml:"lease" flag:"lease" usage:"agent lease (TTL)" reload:"live"`
	// NameClaimGrace is how long a name stays claimed by its owner (the identity of its
	// agents) after the last of their leases ends, whether they were deregistered (dead-peer
	// detection), expired or renamed: during it only the same owner may register the name,
	// so a restarting agent finds it free of squatters. Default (0): Lease; negative: no
	// grace (a name is free as soon as no lease holds it). Read at start only.
	NameClaimGrace time.Duration `yaml:"name_claim_grace"`
	// HeartbeatInterval is the interval agents are told to heartbeat at (the register
	// response's heartbeat_interval_seconds); an agent that missed one is shown as
	// "expiring". It must be shorter than Lease. Zero (the default) derives it from the
	// lease: Lease/3, at least MinDerivedHeartbeatInterval (so 10s for the default lease).
	// See EffectiveHeartbeatInterval.
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval" flag:"heartbeat-interval" usage:"interval agents are told to heartbeat at; 0 derives lease/3" reload:"live"`
	// ExpiryInterval is how often ended leases are collected; the expired event is sent
	// at most this long (plus processing) after a lease ends. Default 100ms.
	ExpiryInterval time.Duration `yaml:"expiry_interval"`
	// ExpiryBatch bounds the leases collected per store call. Default 500.
	ExpiryBatch int `yaml:"expiry_batch"`
	// DiscoverDefaultLimit and DiscoverMaxLimit bound discovery results. Defaults 100, 1000.
	DiscoverDefaultLimit int `yaml:"discover_default_limit" reload:"live"`
	DiscoverMaxLimit     int `yaml:"discover_max_limit" reload:"live"`
	// MaxMetadataBytes bounds a registration's metadata (as JSON). Default and maximum
	// 4096 (mxp.MaxMetadataSize: the edge and the SDK refuse more, so a larger bound would
	// promise what never arrives); lower it to tighten.
	MaxMetadataBytes int `yaml:"max_metadata_bytes" reload:"live"`
	// MaxHeartbeatMetadataBytes bounds a heartbeat's metadata (the agent's lifecycle, as
	// JSON). Default and maximum 1024 (mxp.MaxHeartbeatMetadataSize).
	MaxHeartbeatMetadataBytes int `yaml:"max_heartbeat_metadata_bytes" reload:"live"`
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string `yaml:"log_level" flag:"log-level" usage:"debug, info, warn or error" reload:"live"`
	// Limits on bus requests: payload size, concurrency, timeout, per-agent rate.
	Limits security.Limits `yaml:"limits"`
	// Redis tunes the Redis store.
	Redis RedisConfig `yaml:"redis"`
	// EmbeddedNATS tunes the embedded server when NATS is empty.
	EmbeddedNATS bus.EmbeddedConfig `yaml:"embedded_nats"`
	// ShutdownTimeout bounds graceful shutdown. Default 20s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// RedisConfig tunes the Redis store.
type RedisConfig struct {
	// Password overrides the URL's password (keep it out of URLs and logs).
	Password security.Secret `yaml:"password"`
	// Prefix of every key. Default "mxp:registry:".
	Prefix string `yaml:"prefix"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Store:                     "memory",
		HTTP:                      "127.0.0.1:9101",
		Lease:                     30 * time.Second,
		ExpiryInterval:            100 * time.Millisecond,
		ExpiryBatch:               500,
		DiscoverDefaultLimit:      100,
		DiscoverMaxLimit:          1000,
		MaxMetadataBytes:          DefaultMetadataSize,
		MaxHeartbeatMetadataBytes: DefaultHeartbeatMetadataSize,
		LogLevel:                  "info",
		Limits:                    security.Limits{MaxPayloadBytes: 64 << 10}.WithDefaults(),
		Redis:                     RedisConfig{Prefix: "mxp:registry:"},
		ShutdownTimeout:           20 * time.Second,
	}
}

// MinDerivedHeartbeatInterval is the floor of a heartbeat interval derived from the lease
// (HeartbeatInterval zero), so a short lease does not ask agents for a heartbeat storm. It
// is below the shortest lease Validate accepts (1s), so a derived interval is always
// shorter than its lease.
const MinDerivedHeartbeatInterval = 500 * time.Millisecond

// EffectiveHeartbeatInterval is the interval the registry tells agents and judges them
// by: HeartbeatInterval when set, otherwise Lease/3 floored at
// MinDerivedHeartbeatInterval. It follows Lease on reload when HeartbeatInterval is zero.
func (c Config) EffectiveHeartbeatInterval() time.Duration {
	if c.HeartbeatInterval > 0 {
		return c.HeartbeatInterval
	}
	return max(c.Lease/3, MinDerivedHeartbeatInterval)
}

// Validate implements config.Validator.
func (c Config) Validate() error {
	var errs []error
	add := func(key, format string, args ...any) { errs = append(errs, config.FieldError(key, format, args...)) }
	if c.Store != "memory" && !strings.HasPrefix(c.Store, "redis://") && !strings.HasPrefix(c.Store, "rediss://") {
		add("store", "want memory or a redis:// URL, got %q", c.Store)
	}
	if c.Lease < time.Second {
		add("lease", "must be at least 1s, got %v", c.Lease)
	}
	switch {
	case c.HeartbeatInterval < 0:
		add("heartbeat_interval", "must be 0 (derived from lease: lease/3, at least %v) or positive, got %v", MinDerivedHeartbeatInterval, c.HeartbeatInterval)
	case c.HeartbeatInterval > 0 && c.HeartbeatInterval >= c.Lease:
		add("heartbeat_interval", "must be shorter than lease (%v), got %v; leave it unset (0) to derive lease/3", c.Lease, c.HeartbeatInterval)
	}
	if c.NameClaimGrace > time.Hour {
		add("name_claim_grace", "must be at most 1h (a name nobody uses stays reserved that long), got %v", c.NameClaimGrace)
	}
	if c.ExpiryInterval <= 0 || c.ExpiryInterval > time.Second {
		add("expiry_interval", "must be in (0, 1s] so expiry is announced within a second, got %v", c.ExpiryInterval)
	}
	if c.ExpiryBatch <= 0 {
		add("expiry_batch", "must be positive, got %d", c.ExpiryBatch)
	}
	if c.DiscoverDefaultLimit <= 0 || c.DiscoverMaxLimit < c.DiscoverDefaultLimit {
		add("discover_max_limit", "need 0 < discover_default_limit (%d) <= discover_max_limit (%d)", c.DiscoverDefaultLimit, c.DiscoverMaxLimit)
	}
	if c.MaxMetadataBytes < 64 || c.MaxMetadataBytes > mxp.MaxMetadataSize {
		add("max_metadata_bytes", "must be 64 to %d (mxp.MaxMetadataSize), got %d", mxp.MaxMetadataSize, c.MaxMetadataBytes)
	}
	if c.MaxHeartbeatMetadataBytes < 64 || c.MaxHeartbeatMetadataBytes > mxp.MaxHeartbeatMetadataSize {
		add("max_heartbeat_metadata_bytes", "must be 64 to %d (mxp.MaxHeartbeatMetadataSize), got %d", mxp.MaxHeartbeatMetadataSize, c.MaxHeartbeatMetadataBytes)
	}
	if c.LogLevel != "" {
		switch strings.ToLower(c.LogLevel) {
		case "debug", "info", "warn", "error":
		default:
			add("log_level", "want debug, info, warn or error, got %q", c.LogLevel)
		}
	}
	if err := c.Limits.Validate(); err != nil {
		add("limits", "%v", err)
	}
	if c.ShutdownTimeout <= 0 {
		add("shutdown_timeout", "must be positive, got %v", c.ShutdownTimeout)
	}
	return errors.Join(errs...)
}

// nameClaimGrace resolves NameClaimGrace: 0 is the lease, negative none.
func (c Config) nameClaimGrace() time.Duration {
	switch {
	case c.NameClaimGrace == 0:
		return c.Lease
	case c.NameClaimGrace < 0:
		return 0
	}
	return c.NameClaimGrace
}
