package bus

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// EmbeddedConfig configures the in-process nats-server.
type EmbeddedConfig struct {
	// Host to listen on. Default 127.0.0.1.
	Host string `yaml:"host"`
	// Port to listen on: 0 picks a free port (the default), a positive value fixes it.
	Port int `yaml:"port"`
	// DontListen serves in-process connections only: no TCP socket is opened.
	DontListen bool `yaml:"dont_listen"`
	// MaxPayload is the largest message the server accepts, in bytes. Default 8 MiB.
	MaxPayload int32 `yaml:"max_payload"`
	// ReadyTimeout bounds the wait for the server to accept connections. Default 10s.
	ReadyTimeout time.Duration `yaml:"ready_timeout"`
}

// Server is an embedded nats-server running in this process.
type Server struct {
	ns  *server.Server
	cfg EmbeddedConfig
}

// StartEmbedded starts an embedded nats-server and waits until it accepts connections.
func StartEmbedded(cfg EmbeddedConfig) (*Server, error) {
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.MaxPayload == 0 {
		cfg.MaxPayload = 8 << 20
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = 10 * time.Second
	}
	port := cfg.Port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts := &server.Options{
		ServerName: "mxp-embedded",
		Host:       cfg.Host,
		Port:       port,
		DontListen: cfg.DontListen,
		NoSigs:     true,
		NoLog:      true,
		MaxPayload: cfg.MaxPayload,
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("bus: embedded nats-server: %w", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(cfg.ReadyTimeout) {
		ns.Shutdown()
		return nil, errors.New("bus: embedded nats-server not ready in time")
	}
	return &Server{ns: ns, cfg: cfg}, nil
}

// ClientURL is the nats:// URL of the server ("" when DontListen is set).
func (s *Server) ClientURL() string {
	if s.cfg.DontListen {
		return ""
	}
	return s.ns.ClientURL()
}

// Connect opens a client connection to the embedded server. With DontListen the
// connection is in process; otherwise it goes through the loopback socket.
func (s *Server) Connect(name string, opts ...nats.Option) (*nats.Conn, error) {
	base := []nats.Option{nats.Name(name), nats.MaxReconnects(-1)}
	if s.cfg.DontListen {
		base = append(base, nats.InProcessServer(s.ns))
		return nats.Connect("", append(base, opts...)...)
	}
	return nats.Connect(s.ns.ClientURL(), append(base, opts...)...)
}

// NumClients reports connected clients (used by tests and health checks).
func (s *Server) NumClients() int { return s.ns.NumClients() }

// Shutdown stops the server and waits for it to finish.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}
