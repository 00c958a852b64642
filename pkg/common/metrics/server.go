package metrics

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/pprof"

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
	// Limits bound what clients can hold of the server (timeouts, header size,
	// connections); zero fields take their defaults (see ServerLimits).
	Limits ServerLimits `yaml:"limits"`
}

// Server is the admin HTTP server of one service.
type Server struct {
	router chi.Router
	srv    *http.Server
	limits ServerLimits
	m      *serverMetrics
	ln     net.Listener
}

// NewServer builds the router: /metrics from reg, /livez and /readyz from checker, and
// /debug/pprof when enabled, and registers the server's connection metrics on reg
// (mxp_http_connections, mxp_http_connections_waited_total, mxp_http_idle_evictions_total,
// mxp_http_connections_refused_total, mxp_http_timeouts_total).
// Mount service routes on Router() before Start.
func NewServer(cfg ServerConfig, reg *Registry, checker *health.Checker) *Server {
	lim := cfg.Limits.WithDefaults()
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
	srv := &http.Server{
		Addr:              cfg.Addr,
		Handler:           r,
		ReadHeaderTimeout: lim.ReadHeaderTimeout,
		ReadTimeout:       lim.ReadTimeout,
		WriteTimeout:      lim.WriteTimeout,
		IdleTimeout:       lim.IdleTimeout,
		MaxHeaderBytes:    lim.MaxHeaderBytes,
		ConnState:         trackState,
		BaseContext: func(net.Listener) context.Context {
			return context.WithValue(context.Background(), limitsKey{}, lim)
		},
	}
	return &Server{router: r, srv: srv, limits: lim, m: newServerMetrics(reg)}
}

// Limits are the server's effective limits (defaults applied).
func (s *Server) Limits() ServerLimits { return s.limits }

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
	s.ln = newLimitListener(ln, s.limits.MaxConns, s.limits.MaxConnsPerIP, s.m)
	go s.srv.Serve(s.ln)
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
