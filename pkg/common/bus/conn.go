package bus

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Config selects and tunes the bus connection.
type Config struct {
	// URL of an external NATS server or cluster (comma-separated). Empty starts an
	// embedded server.
	URL string `yaml:"url"`
	// Embedded tunes the embedded server when URL is empty.
	Embedded EmbeddedConfig `yaml:"embedded"`
	// ReconnectWait is the first reconnect delay; it doubles up to MaxReconnectWait with
	// full jitter. Defaults 100ms and 5s.
	ReconnectWait    time.Duration `yaml:"reconnect_wait"`
	MaxReconnectWait time.Duration `yaml:"max_reconnect_wait"`
	// ConnectTimeout bounds the first connection. Default 5s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// DrainTimeout bounds Drain on shutdown. Default 10s.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
}

func (c Config) withDefaults() Config {
	if c.ReconnectWait <= 0 {
		c.ReconnectWait = 100 * time.Millisecond
	}
	if c.MaxReconnectWait <= 0 {
		c.MaxReconnectWait = 5 * time.Second
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 5 * time.Second
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 10 * time.Second
	}
	return c
}

// ReconnectDelay returns the delay before reconnect attempt n (1-based): exponential from
// base, capped at max, with full jitter (uniform in [0, cap]).
func ReconnectDelay(attempt int, base, max time.Duration) time.Duration {
	d := base
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	if d <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(d) + 1))
}

// Bus is a connection to the mesh bus, and the embedded server when it started one.
type Bus struct {
	Conn   *nats.Conn
	Server *Server // nil when connected to an external URL
	cfg    Config
	log    *slog.Logger
}

// Connect connects to cfg.URL, or starts an embedded server and connects to it when the
// URL is empty. name is the client name shown by the NATS tooling.
func Connect(cfg Config, name string, logger *slog.Logger, opts ...nats.Option) (*Bus, error) {
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.Default()
	}
	b := &Bus{cfg: cfg, log: logger}
	if cfg.URL == "" {
		srv, err := StartEmbedded(cfg.Embedded)
		if err != nil {
			return nil, err
		}
		b.Server = srv
	}
	nc, err := b.NewConn(name, opts...)
	if err != nil {
		if b.Server != nil {
			b.Server.Shutdown()
		}
		return nil, err
	}
	b.Conn = nc
	return b, nil
}

// Start starts an embedded server (cfg.URL is ignored) and connects to it.
func Start(cfg Config, name string, logger *slog.Logger, opts ...nats.Option) (*Bus, error) {
	cfg.URL = ""
	return Connect(cfg, name, logger, opts...)
}

// NewConn opens one more connection to the same bus (each service in `mxp dev` gets its
// own, so draining one does not cut another).
func (b *Bus) NewConn(name string, opts ...nats.Option) (*nats.Conn, error) {
	cfg := b.cfg
	logger := b.log.With("nats_client", name)
	base := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.Timeout(cfg.ConnectTimeout),
		nats.DrainTimeout(cfg.DrainTimeout),
		nats.CustomReconnectDelay(func(attempts int) time.Duration {
			return ReconnectDelay(attempts, cfg.ReconnectWait, cfg.MaxReconnectWait)
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			logger.Info("nats reconnected", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			logger.Error("nats async error", "subject", subj, "err", err)
		}),
	}
	base = append(base, opts...)
	if b.Server != nil {
		nc, err := b.Server.Connect(name, base...)
		if err != nil {
			return nil, fmt.Errorf("bus: connect to embedded server: %w", err)
		}
		return nc, nil
	}
	nc, err := nats.Connect(cfg.URL, base...)
	if err != nil {
		return nil, fmt.Errorf("bus: connect to %s: %w", redactURL(cfg.URL), err)
	}
	return nc, nil
}

// Drain drains nc: subscriptions stop taking new messages, pending ones are handled,
// pending publishes are flushed, then the connection closes. It waits at most timeout.
func Drain(nc *nats.Conn, timeout time.Duration) error {
	if nc == nil || nc.IsClosed() {
		return nil
	}
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := nc.Drain(); err != nil {
		if errors.Is(err, nats.ErrConnectionClosed) {
			return nil
		}
		nc.Close()
		return fmt.Errorf("bus: drain: %w", err)
	}
	select {
	case <-closed:
		return nil
	case <-time.After(timeout):
		nc.Close()
		return errors.New("bus: drain timed out; connection closed")
	}
}

// Close drains the main connection and then stops the embedded server, if any.
func (b *Bus) Close() error {
	err := Drain(b.Conn, b.cfg.DrainTimeout)
	if b.Server != nil {
		b.Server.Shutdown()
	}
	return err
}

// redactURL hides credentials (user:pass@) of each comma-separated server URL.
func redactURL(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			u.User = url.User("[REDACTED]")
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}
