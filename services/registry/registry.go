package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/common/lifecycle"
	"github.com/mxp-mesh/mesh/pkg/common/metrics"
	"github.com/mxp-mesh/mesh/pkg/common/service"
	"github.com/mxp-mesh/mesh/pkg/common/tracing"
)

// Name is the service name (metrics subsystem, micro service name, logs).
const Name = "registry"

// Version of the registry's micro service (shown by $SRV.INFO).
const Version = "0.1.0"

// Service is the registry. Build it with New (no I/O) and run it with Run
// (lifecycle.Service), which checks the store, starts answering on the bus and serves
// until its context ends.
type Service struct {
	cfg   atomic.Pointer[Config]
	deps  service.Deps
	store Store
	ep    atomic.Pointer[service.Endpoints] // set while Run serves the bus API
	now   func() time.Time

	serving chan struct{} // closed once Run answers on the bus
	once    sync.Once

	events     *prometheus.CounterVec
	heartbeats *prometheus.CounterVec
	expiryLag  prometheus.Histogram
	storeErrs  *prometheus.CounterVec
	conflicts  prometheus.Counter
	httpReqs   *prometheus.CounterVec
}

// OpenStore builds the store cfg.Store names without contacting it: memory, or a Redis
// client that dials on first use (Run pings it before serving).
func OpenStore(cfg Config) (Store, error) {
	if cfg.Store == "" || cfg.Store == "memory" {
		return NewMemoryStoreWith(MemoryOptions{NameClaimGrace: cfg.nameClaimGrace()}), nil
	}
	return redisStoreFor(RedisOptions{URL: cfg.Store, Password: cfg.Redis.Password.Reveal(), Prefix: cfg.Redis.Prefix,
		NameClaimGrace: cfg.nameClaimGrace()})
}

// New builds the registry from cfg on deps (deps.Conn is required). It does no I/O: the
// store is contacted, and the bus endpoints registered, by Run.
func New(cfg Config, deps service.Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	st, err := OpenStore(cfg)
	if err != nil {
		return nil, err
	}
	s, err := NewWithStore(cfg, deps, st)
	if err != nil {
		st.Close()
		return nil, err
	}
	return s, nil
}

// NewWithStore builds the registry on a store (which it then owns) with no I/O: it
// registers its metrics, its readiness checks ("registry" is false until Run answers on
// the bus) and, when deps.Router is set, the /v1/agents routes.
func NewWithStore(cfg Config, deps service.Deps, st Store) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Conn == nil {
		return nil, errors.New("registry: deps.Conn is required")
	}
	deps = deps.WithDefaults(Name)
	s := &Service{deps: deps, store: st, now: time.Now, serving: make(chan struct{})}
	s.cfg.Store(&cfg)
	if err := s.initMetrics(); err != nil {
		return nil, err
	}
	deps.Health.Add("registry", func(context.Context) error {
		if s.ep.Load() == nil {
			return errors.New("registry: not serving")
		}
		return nil
	})
	deps.Health.Add("store", st.Ping)
	deps.Health.Add("nats", func(context.Context) error {
		if st := deps.Conn.Status(); st != nats.CONNECTED {
			return fmt.Errorf("nats connection is %s", st)
		}
		return nil
	})
	if deps.Router != nil {
		s.mountHTTP(deps.Router)
	}
	return s, nil
}

// serve registers the micro endpoints and flushes them to the server, so a request sent
// once Serving is closed finds them.
func (s *Service) serve() (*service.Endpoints, error) {
	ep, err := service.NewEndpoints(s.deps, micro.Config{
		Name: Name, Version: Version, QueueGroup: bus.QueueRegistry,
		Description: "MXP agent registry: register, heartbeat, deregister, discover",
	}, s.Config().Limits)
	if err != nil {
		return nil, err
	}
	for _, e := range []struct {
		name, subject string
		h             service.HandlerFunc
	}{
		{"register", bus.SubjectRegistryRegister, s.handleRegister},
		{"heartbeat", bus.SubjectRegistryHeartbeat, s.handleHeartbeat},
		{"deregister", bus.SubjectRegistryDeregister, s.handleDeregister},
		{"discover", bus.SubjectRegistryDiscover, s.handleDiscover},
	} {
		if err := ep.Handle(e.name, e.subject, e.h); err != nil {
			ep.Stop(context.Background())
			return nil, err
		}
	}
	if err := s.deps.Conn.Flush(); err != nil {
		ep.Stop(context.Background())
		return nil, fmt.Errorf("registry: flush subscriptions: %w", err)
	}
	return ep, nil
}

// Serving is closed once Run answers on the bus.
func (s *Service) Serving() <-chan struct{} { return s.serving }

func (s *Service) initMetrics() error {
	ns := metrics.Namespace
	s.events = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: Name, Name: "events_total",
		Help: "Registry events published, by type (registered, deregistered, expired, lifecycle)."}, []string{"type"})
	s.heartbeats = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: Name, Name: "heartbeats_total",
		Help: "Heartbeats by result (ok, needs_register)."}, []string{"result"})
	s.expiryLag = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: Name, Name: "expiry_lag_seconds",
		Help: "Time from a lease's end to its expired event.", Buckets: []float64{.01, .025, .05, .1, .15, .2, .3, .5, .75, 1, 2, 5}})
	s.storeErrs = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: Name, Name: "store_errors_total",
		Help: "Store operations that failed, by operation."}, []string{"op"})
	s.conflicts = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: Name, Name: "register_conflicts_total",
		Help: "Registrations refused with conflict: the name or id is held by another identity while its lease lives."})
	s.httpReqs = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: Name, Name: "http_requests_total",
		Help: "HTTP read API requests by route and result code (ok or the error code)."}, []string{"route", "code"})
	agents := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: Name, Name: "agents",
		Help: "Agents registered (including ended leases not yet collected)."}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		n, err := s.store.Count(ctx)
		if err != nil {
			return -1
		}
		return float64(n)
	})
	for _, c := range []prometheus.Collector{s.events, s.heartbeats, s.expiryLag, s.storeErrs, s.conflicts, s.httpReqs, agents} {
		if err := s.deps.Metrics.Register(c); err != nil {
			return fmt.Errorf("registry metrics: %w", err)
		}
	}
	return nil
}

// Name implements lifecycle.Service.
func (s *Service) Name() string { return Name }

// Config returns the running config.
func (s *Service) Config() Config { return *s.cfg.Load() }

// SetConfig applies a reloaded config: lease, heartbeat interval, discovery and metadata
// limits and request limits take effect for the next request.
func (s *Service) SetConfig(c Config) {
	s.cfg.Store(&c)
	if ep := s.ep.Load(); ep != nil {
		ep.SetLimits(c.Limits)
	}
}

// Store is the store the registry runs on.
func (s *Service) Store() Store { return s.store }

// storeOpener is a store that connects to something (Redis): Run opens it before
// serving, so a store unreachable at start fails the service instead of serving 503s.
type storeOpener interface {
	Open(ctx context.Context) error
}

// Run opens the store, registers the bus endpoints (Serving is closed then), collects
// ended leases until ctx is cancelled, then stops intake, drains in-flight requests and
// closes the store. A store that cannot be opened fails Run before anything is served.
func (s *Service) Run(ctx context.Context) error {
	if o, ok := s.store.(storeOpener); ok {
		if err := o.Open(ctx); err != nil {
			s.store.Close()
			return fmt.Errorf("registry: %s store: %w", s.store.Kind(), err)
		}
	}
	ep, err := s.serve()
	if err != nil {
		s.store.Close()
		return err
	}
	s.ep.Store(ep)
	ep.SetLimits(s.Config().Limits) // a SetConfig before the Store above is not lost
	s.once.Do(func() { close(s.serving) })
	expiryDone := make(chan struct{})
	expiryCtx, stopExpiry := context.WithCancel(context.Background())
	go func() {
		defer close(expiryDone)
		s.expiryLoop(expiryCtx)
	}()
	s.deps.Logger.Info("registry running", "store", s.store.Kind(), "lease", s.Config().Lease)
	<-ctx.Done()
	dctx, cancel := lifecycle.DrainContext(ctx)
	defer cancel()
	err = ep.Stop(dctx)
	s.ep.Store(nil)
	stopExpiry()
	<-expiryDone
	return errors.Join(err, s.store.Close())
}

// publish sends a registry event; a failure is logged, never returned to the caller
// whose request already succeeded.
func (s *Service) publish(ctx context.Context, subject, typ string, a Agent, now time.Time, lag time.Duration) {
	s.publishEvent(ctx, subject, Event{Type: typ, Agent: a.Record(now, s.Config().EffectiveHeartbeatInterval()), Timestamp: now.UTC(), LagSeconds: lag.Seconds()})
}

// publishEvent sends ev on subject (see publish).
func (s *Service) publishEvent(ctx context.Context, subject string, ev Event) {
	typ, id := ev.Type, ev.Agent.ID.String()
	body, err := json.Marshal(ev)
	if err != nil {
		s.deps.Logger.ErrorContext(ctx, "event encode failed", "err", err)
		return
	}
	msg := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{}}
	bus.SetAgentID(msg.Header, id)
	tracing.Inject(ctx, msg.Header)
	if err := s.deps.Conn.PublishMsg(msg); err != nil {
		s.deps.Logger.ErrorContext(ctx, "event publish failed", "type", typ, "agent_id", id, "err", err)
		return
	}
	s.events.WithLabelValues(typ).Inc()
}

// expiryLoop pops ended leases every ExpiryInterval and announces them.
func (s *Service) expiryLoop(ctx context.Context) {
	t := time.NewTicker(s.Config().ExpiryInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.collectExpired(ctx)
		}
	}
}

// collectExpired pops every lease ended by now, in batches, and publishes expired events.
func (s *Service) collectExpired(ctx context.Context) {
	batch := s.Config().ExpiryBatch
	for {
		now := s.now()
		as, err := s.store.PopExpired(ctx, now, batch)
		if err != nil {
			if ctx.Err() == nil {
				s.storeErrs.WithLabelValues("pop_expired").Inc()
				s.deps.Logger.Error("collecting expired leases failed", "err", err)
			}
			return
		}
		for _, a := range as {
			lag := max(s.now().Sub(a.ExpiresAt), 0)
			s.expiryLag.Observe(lag.Seconds())
			s.publish(ctx, bus.SubjectRegistryExpired, "expired", a, now, lag)
			s.deps.Logger.Info("agent expired", "agent_id", a.ID, "name", a.Name, "lag", lag)
		}
		if len(as) < batch {
			return
		}
	}
}
