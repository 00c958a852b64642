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
	"go.opentelemetry.io/otel/trace/noop"

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
	// Shared, when set, holds what the services of one process share (Process: mxp dev,
	// several targets): the service gets its own connection to the shared bus, a view of
	// the shared metrics registry (its config metrics labelled with its name), its checks
	// on the shared health checker and its routes on the shared HTTP server. Bus and HTTP
	// are then ignored, and the process starts and stops what is shared.
	Shared *Shared
	// HTTP serves /metrics, /livez, /readyz, /debug/pprof and the service's routes;
	// an empty Addr disables it.
	HTTP metrics.ServerConfig
	// LogLevel is the starting level (debug, info, warn, error); LogWriter defaults to stderr.
	LogLevel  string
	LogWriter io.Writer
	// Logger, when set, is the service's logger as given (tests that collect the lines);
	// LogLevel and LogWriter are then not used.
	Logger *slog.Logger
	// Tracer, when set, is the service's tracer (tests that record spans; a Process's
	// module tracer); no provider is set up from the OTEL_* variables. With Shared, the
	// process gives it (nil: none is recorded), and no provider is set up either.
	Tracer trace.Tracer
	// ShutdownTimeout bounds the graceful shutdown. Default 30s.
	ShutdownTimeout time.Duration
}

// Shared is what the services of one process share; see BaseConfig.Shared.
type Shared struct {
	Bus     *bus.Bus
	Metrics *metrics.Registry
	Health  *health.Checker
	HTTP    *metrics.Server // nil when the process serves no HTTP
}

// Base holds the resources of one service: its own process's, or its share of a process
// that runs several (BaseConfig.Shared).
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
	b.Logger = cfg.Logger
	if b.Logger == nil {
		b.Logger = mlog.New(mlog.Options{Service: cfg.Service, Level: b.Level, Writer: cfg.LogWriter})
	}
	b.Tracer, b.stopTracing = cfg.Tracer, func(context.Context) error { return nil }
	if b.Tracer == nil && cfg.Shared != nil {
		// The process owns the one provider (Process) and gives each module its tracer;
		// a Base of its own must not install another over it.
		b.Tracer = noop.NewTracerProvider().Tracer("mxp-" + cfg.Service)
	}
	if b.Tracer == nil {
		tp, stop, err := tracing.Setup(ctx, cfg.Service, cfg.Version)
		if err != nil {
			return nil, fmt.Errorf("tracing: %w", err)
		}
		b.Tracer, b.stopTracing = tp.Tracer("mxp-"+cfg.Service), stop
	}
	var err error
	name := "mxp-" + cfg.Service
	check := "bus"
	if sh := cfg.Shared; sh != nil {
		b.Metrics = sh.Metrics.ForService(cfg.Service)
		b.Health = sh.Health
		b.HTTP = sh.HTTP
		b.Conn, err = sh.Bus.NewConn(name)
		check = "bus/" + cfg.Service // one bus check per service on the shared checker
	} else {
		b.Metrics = metrics.NewRegistry(cfg.Service)
		b.Health = health.NewChecker(func() string { return b.digest() })
		b.Bus, err = bus.Connect(cfg.Bus, name, b.Logger)
		if b.Bus != nil {
			b.Conn = b.Bus.Conn
		}
		if err == nil && cfg.HTTP.Addr != "" {
			b.HTTP = metrics.NewServer(cfg.HTTP, b.Metrics, b.Health)
		}
	}
	if err != nil {
		_ = b.stopTracing(ctx)
		return nil, err
	}
	if err := RegisterBusMetrics(b.Metrics, b.Conn); err != nil {
		b.close(ctx)
		return nil, err
	}
	conn := b.Conn
	b.Health.Add(check, func(context.Context) error {
		if st := conn.Status(); st != nats.CONNECTED {
			return fmt.Errorf("nats connection is %s", st)
		}
		return nil
	})
	return b, nil
}

// RegisterBusMetrics exports nc's state and traffic: mxp_bus_connected,
// mxp_bus_reconnects_total, mxp_bus_messages_total{direction} and
// mxp_bus_bytes_total{direction}, each labelled service=reg.Service() (one connection
// per service, so the services of one process keep their series apart).
func RegisterBusMetrics(reg *metrics.Registry, nc *nats.Conn) error {
	ns := metrics.Namespace
	into := prometheus.WrapRegistererWith(prometheus.Labels{"service": reg.Service()}, reg)
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
		if err := into.Register(c); err != nil {
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
// starts the HTTP server first. With BaseConfig.Shared, the process runs the services
// instead (Process).
func (b *Base) Runner(svc ...lifecycle.Service) (*lifecycle.Runner, error) {
	if b.cfg.Shared != nil {
		return nil, errors.New("service: a Base on a shared process is run by its Process")
	}
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
