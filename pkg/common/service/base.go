package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/common/config"
	"github.com/mxp-mesh/mesh/pkg/common/health"
	"github.com/mxp-mesh/mesh/pkg/common/lifecycle"
	mlog "github.com/mxp-mesh/mesh/pkg/common/log"
	"github.com/mxp-mesh/mesh/pkg/common/metrics"
	"github.com/mxp-mesh/mesh/pkg/common/tracing"
)

// BaseConfig is what every service main sets up the same way.
type BaseConfig struct {
	Service string // "registry", "inference", ...
	Version string
	// Bus selects the embedded server or an external URL.
	Bus bus.Config
	// Shared, when set, is an already running bus (mxp dev): the service gets its own
	// connection to it, and Bus is ignored.
	Shared *bus.Bus
	// HTTP serves /metrics, /livez, /readyz, /debug/pprof and the service's routes;
	// an empty Addr disables it.
	HTTP metrics.ServerConfig
	// LogLevel is the starting level (debug, info, warn, error); LogWriter defaults to stderr.
	LogLevel  string
	LogWriter io.Writer
	// ShutdownTimeout bounds the graceful shutdown. Default 30s.
	ShutdownTimeout time.Duration
}

// Base holds the shared resources of one service process (or one service inside mxp dev).
type Base struct {
	Logger  *slog.Logger
	Level   *slog.LevelVar
	Bus     *bus.Bus   // nil when Shared was given
	Conn    *nats.Conn // this service's bus connection
	Metrics *metrics.Registry
	Health  *health.Checker
	HTTP    *metrics.Server // nil when HTTP is disabled
	Tracer  trace.Tracer

	cfg           BaseConfig
	digest        func() string
	stopTracing   func(context.Context) error
	watcherRunner []lifecycle.Service
}

// NewBase sets up logging, tracing, metrics, health, the bus connection and the HTTP
// server (not yet listening: mount routes on Router, then Runner().Run starts it).
func NewBase(ctx context.Context, cfg BaseConfig) (*Base, error) {
	b := &Base{cfg: cfg, Level: new(slog.LevelVar), digest: func() string { return "" }}
	if cfg.LogLevel != "" {
		l, err := mlog.ParseLevel(cfg.LogLevel)
		if err != nil {
			return nil, err
		}
		b.Level.Set(l)
	}
	b.Logger = mlog.New(mlog.Options{Service: cfg.Service, Level: b.Level, Writer: cfg.LogWriter})
	tp, stop, err := tracing.Setup(ctx, cfg.Service, cfg.Version)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	b.Tracer, b.stopTracing = tp.Tracer("mxp-"+cfg.Service), stop
	b.Metrics = metrics.NewRegistry(cfg.Service)
	b.Health = health.NewChecker(func() string { return b.digest() })
	name := "mxp-" + cfg.Service
	if cfg.Shared != nil {
		b.Conn, err = cfg.Shared.NewConn(name)
	} else {
		b.Bus, err = bus.Connect(cfg.Bus, name, b.Logger)
		if b.Bus != nil {
			b.Conn = b.Bus.Conn
		}
	}
	if err != nil {
		stop(ctx)
		return nil, err
	}
	if cfg.HTTP.Addr != "" {
		b.HTTP = metrics.NewServer(cfg.HTTP, b.Metrics, b.Health)
	}
	if err := RegisterBusMetrics(b.Metrics, b.Conn); err != nil {
		return nil, err
	}
	conn := b.Conn
	b.Health.Add("bus", func(context.Context) error {
		if st := conn.Status(); st != nats.CONNECTED {
			return fmt.Errorf("nats connection is %s", st)
		}
		return nil
	})
	return b, nil
}

// RegisterBusMetrics exports nc's state and traffic: mxp_bus_connected,
// mxp_bus_reconnects_total, mxp_bus_messages_total{direction} and
// mxp_bus_bytes_total{direction}.
func RegisterBusMetrics(reg *metrics.Registry, nc *nats.Conn) error {
	ns := metrics.Namespace
	cs := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: "bus", Name: "connected",
			Help: "1 while the NATS connection is connected."}, func() float64 {
			if nc.IsConnected() {
				return 1
			}
			return 0
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Subsystem: "bus", Name: "reconnects_total",
			Help: "NATS reconnections."}, func() float64 { return float64(nc.Stats().Reconnects) }),
	}
	for _, dir := range []string{"in", "out"} {
		msgs := func() float64 {
			st := nc.Stats()
			if dir == "in" {
				return float64(st.InMsgs)
			}
			return float64(st.OutMsgs)
		}
		bytes := func() float64 {
			st := nc.Stats()
			if dir == "in" {
				return float64(st.InBytes)
			}
			return float64(st.OutBytes)
		}
		cs = append(cs,
			prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Subsystem: "bus", Name: "messages_total",
				Help: "NATS messages by direction.", ConstLabels: prometheus.Labels{"direction": dir}}, msgs),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Subsystem: "bus", Name: "bytes_total",
				Help: "NATS payload bytes by direction.", ConstLabels: prometheus.Labels{"direction": dir}}, bytes))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("bus metrics: %w", err)
		}
	}
	return nil
}

// Deps returns the dependencies to construct the service with.
func (b *Base) Deps() Deps {
	d := Deps{Logger: b.Logger, Conn: b.Conn, Metrics: b.Metrics, Health: b.Health, Tracer: b.Tracer}
	if b.HTTP != nil {
		d.Router = b.HTTP.Router()
	}
	return d
}

// SetDigest sets the config digest shown in /readyz, logs and mxp_config_info.
func (b *Base) SetDigest(d string) {
	b.digest = func() string { return d }
	b.Metrics.SetConfigDigest(d)
}

// WatchConfig hot-reloads the service's config: the digest follows the running config,
// each attempt is counted, level (when non-nil) picks the log level, and apply receives
// every accepted change. The watcher runs with the Runner.
func WatchConfig[T any](b *Base, l *config.Loader[T], initial T, level func(*T) string, apply func(old, new *T)) *config.Watcher[T] {
	w := config.NewWatcher(l, initial, b.Logger)
	b.SetDigest(w.Digest())
	w.OnResult(func(res config.ReloadResult, err error) {
		b.Metrics.ObserveReload(err == nil)
		if err == nil {
			b.SetDigest(w.Digest())
		}
	})
	w.OnChange(func(old, new *T) {
		if level != nil {
			if lv, err := mlog.ParseLevel(level(new)); err == nil {
				b.Level.Set(lv)
			}
		}
		if apply != nil {
			apply(old, new)
		}
	})
	b.watcherRunner = append(b.watcherRunner, lifecycle.Func{N: "config-watcher", F: w.Run})
	return w
}

// Runner returns a lifecycle runner with svc, the config watchers, and the stop hooks in
// order: drain the bus connection, stop HTTP, flush traces, stop the embedded server. It
// starts the HTTP server first.
func (b *Base) Runner(svc ...lifecycle.Service) (*lifecycle.Runner, error) {
	if b.HTTP != nil {
		if err := b.HTTP.Start(); err != nil {
			return nil, fmt.Errorf("http %s: %w", b.cfg.HTTP.Addr, err)
		}
		b.Logger.Info("http listening", "addr", b.HTTP.Addr())
	}
	r := &lifecycle.Runner{Logger: b.Logger, Health: b.Health, ShutdownTimeout: b.cfg.ShutdownTimeout}
	r.Add(svc...)
	r.Add(b.watcherRunner...)
	r.OnStop("bus", func(ctx context.Context) error { return b.drainBus(ctx) })
	if b.HTTP != nil {
		r.OnStop("http", b.HTTP.Shutdown)
	}
	r.OnStop("tracing", b.stopTracing)
	if b.Bus != nil && b.Bus.Server != nil {
		r.OnStop("embedded-nats", func(context.Context) error { b.Bus.Server.Shutdown(); return nil })
	}
	return r, nil
}

func (b *Base) drainBus(ctx context.Context) error {
	timeout := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if timeout <= 0 {
		b.Conn.Close()
		return errors.New("no time left to drain the bus; closed")
	}
	return bus.Drain(b.Conn, timeout)
}
