package metrics

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mxp-mesh/mesh/pkg/common/health"
)

// ServerConfig configures the admin HTTP server.
type ServerConfig struct {
	// Addr to listen on, e.g. "127.0.0.1:9090" or ":9090". Empty disables the server.
	Addr string `yaml:"addr"`
	// Pprof mounts /debug/pprof. Default true in the services' defaults.
	Pprof bool `yaml:"pprof"`
	// ReadHeaderTimeout guards against slow clients. Default 5s.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
}

// Server is the admin HTTP server of one service.
type Server struct {
	router chi.Router
	srv    *http.Server
	ln     net.Listener
}

// NewServer builds the router: /metrics from reg, /livez and /readyz from checker, and
// /debug/pprof when enabled. Mount service routes on Router() before Start.
func NewServer(cfg ServerConfig, reg *Registry, checker *health.Checker) *Server {
	if cfg.ReadHeaderTimeout <= 0 {
		cfg.ReadHeaderTimeout = 5 * time.Second
	}
	r := chi.NewRouter()
	r.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, EnableOpenMetrics: true}))
	r.Handle("/livez", checker.LiveHandler())
	r.Handle("/readyz", checker.ReadyHandler())
	if cfg.Pprof {
		r.HandleFunc("/debug/pprof/*", pprof.Index)
		r.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		r.HandleFunc("/debug/pprof/profile", pprof.Profile)
		r.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		r.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return &Server{router: r, srv: &http.Server{Addr: cfg.Addr, Handler: r, ReadHeaderTimeout: cfg.ReadHeaderTimeout}}
}

// Router is the chi router; services mount their own routes on it.
func (s *Server) Router() chi.Router { return s.router }

// Handler is the full handler (for tests with httptest).
func (s *Server) Handler() http.Handler { return s.router }

// Start listens and serves in the background. It returns once the socket is bound so Addr
// is known (useful with port 0).
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.srv.Addr)
	if err != nil {
		return err
	}
	s.ln = ln
	go s.srv.Serve(ln)
	return nil
}

// Addr is the bound address after Start.
func (s *Server) Addr() string {
	if s.ln == nil {
		return s.srv.Addr
	}
	return s.ln.Addr().String()
}

// Shutdown stops accepting connections and waits for in-flight requests until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.ln == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
