package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/common/lifecycle"
	mlog "github.com/mxp-mesh/mesh/pkg/common/log"
	"github.com/mxp-mesh/mesh/pkg/common/metrics"
	"github.com/mxp-mesh/mesh/pkg/common/security"
	"github.com/mxp-mesh/mesh/pkg/common/tracing"
	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// Request is what a handler receives.
type Request struct {
	Subject string
	Data    []byte
	Header  nats.Header
	AgentID string // the caller's agent id header, "" when absent
	Reply   string // the reply subject
}

// HandlerFunc handles one request. It returns a value to send as JSON, or an error
// (a *bus.Error becomes a typed reply; any other error becomes "internal").
type HandlerFunc func(ctx context.Context, req Request) (any, error)

// Endpoints is a micro service with the mesh's request discipline.
type Endpoints struct {
	svc      micro.Service
	deps     Deps
	name     string
	inflight lifecycle.InFlight
	sem      chan struct{}
	limits   atomic.Pointer[security.Limits]
	limiter  *security.Limiter

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	active   prometheus.Gauge
}

// NewEndpoints registers a micro service (cfg.Name, cfg.Version; QueueGroup for replicas)
// on deps.Conn. Limits set payload size, concurrency, timeout and the per-agent rate.
func NewEndpoints(deps Deps, cfg micro.Config, limits security.Limits) (*Endpoints, error) {
	deps = deps.WithDefaults(cfg.Name)
	svc, err := micro.AddService(deps.Conn, cfg)
	if err != nil {
		return nil, fmt.Errorf("service %s: %w", cfg.Name, err)
	}
	limits = limits.WithDefaults()
	e := &Endpoints{svc: svc, deps: deps, name: cfg.Name, sem: make(chan struct{}, limits.MaxConcurrent)}
	e.limits.Store(&limits)
	e.limiter = security.NewLimiter(security.LimiterConfig{Rate: limits.RatePerSecond, Burst: limits.RateBurst})
	ns := metrics.Namespace
	e.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: cfg.Name, Name: "requests_total",
		Help: "Bus requests handled, by endpoint and result code (ok or the error code)."}, []string{"endpoint", "code"})
	e.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: cfg.Name, Name: "request_duration_seconds",
		Help: "Time to handle a bus request.", Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10)}, []string{"endpoint"})
	e.active = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: cfg.Name, Name: "requests_in_flight",
		Help: "Bus requests being handled now."})
	for _, c := range []prometheus.Collector{e.requests, e.duration, e.active} {
		if err := deps.Metrics.Register(c); err != nil {
			svc.Stop()
			return nil, fmt.Errorf("service %s metrics: %w", cfg.Name, err)
		}
	}
	return e, nil
}

// Micro is the underlying micro service (Info, Stats).
func (e *Endpoints) Micro() micro.Service { return e.svc }

// SetLimits applies new limits live (payload size, timeout, rate). MaxConcurrent keeps
// its starting value.
func (e *Endpoints) SetLimits(l security.Limits) {
	l = l.WithDefaults()
	e.limits.Store(&l)
	e.limiter.SetRate(l.RatePerSecond, l.RateBurst)
}

// Handle adds endpoint name on subject.
// The subscription is flushed to the server before Handle returns, so a request sent
// afterwards finds the endpoint.
func (e *Endpoints) Handle(name, subject string, h HandlerFunc) error {
	err := e.svc.AddEndpoint(name, micro.HandlerFunc(func(r micro.Request) { e.dispatch(name, r, h) }),
		micro.WithEndpointSubject(subject))
	if err != nil {
		return err
	}
	return e.deps.Conn.Flush()
}

func (e *Endpoints) dispatch(name string, r micro.Request, h HandlerFunc) {
	// micro's Request may only be answered inside this callback, so the goroutine below
	// answers through the connection with the request's own data.
	req := Request{Subject: r.Subject(), Data: r.Data(), Header: nats.Header(r.Headers()), Reply: r.Reply()}
	req.AgentID = bus.AgentID(req.Header)
	if !e.inflight.Acquire() {
		e.reply(name, req, bus.Errorf(mxp.CodeUnavailable, "%s is shutting down; retry", e.name), time.Now())
		return
	}
	e.sem <- struct{}{} // back-pressure: at most MaxConcurrent handlers run
	e.active.Inc()
	go func() {
		defer func() {
			<-e.sem
			e.active.Dec()
			e.inflight.Release()
		}()
		e.handle(name, req, h)
	}()
}

func (e *Endpoints) handle(name string, req Request, h HandlerFunc) {
	start := time.Now()
	lim := e.limits.Load()
	hdr := req.Header
	if len(req.Data) > lim.MaxPayloadBytes {
		e.reply(name, req, bus.Errorf(mxp.CodeTooLarge, "payload of %d bytes exceeds the limit of %d", len(req.Data), lim.MaxPayloadBytes), start)
		return
	}
	if lim.RatePerSecond > 0 {
		key := req.AgentID
		if key == "" {
			key = "anonymous"
		}
		if !e.limiter.Allow(key) {
			e.reply(name, req, bus.Errorf(mxp.CodeRateLimited, "rate limit of %.0f/s exceeded", lim.RatePerSecond), start)
			return
		}
	}
	ctx, cancel := context.WithTimeout(tracing.Extract(context.Background(), hdr), lim.RequestTimeout)
	defer cancel()
	if dl, ok, err := bus.Deadline(hdr); err != nil {
		e.reply(name, req, bus.Errorf(mxp.CodeInvalidArgument, "%v", err), start)
		return
	} else if ok {
		if !time.Now().Before(dl) {
			e.reply(name, req, bus.Errorf(mxp.CodeTimeout, "deadline passed before handling"), start)
			return
		}
		var c2 context.CancelFunc
		ctx, c2 = context.WithDeadline(ctx, dl)
		defer c2()
	}
	f := mlog.Fields{AgentID: req.AgentID}
	f.TraceID, _, _ = bus.TraceID(hdr)
	f.MsgID, _, _ = bus.MsgID(hdr)
	ctx = mlog.WithFields(ctx, f)
	ctx, span := e.deps.Tracer.Start(ctx, e.name+"."+name, trace.WithSpanKind(trace.SpanKindServer))
	defer span.End()
	outcome := "ok"
	// One debug line per handled request, with the request's trace, message and agent ids
	// (and span id when traced): the access log of a service, off at the default level.
	defer func() {
		e.deps.Logger.DebugContext(ctx, "request handled", "endpoint", name, "outcome", outcome, "duration", time.Since(start))
	}()

	res, err := h(ctx, req)
	if err != nil {
		outcome = string(errorCode(err))
		span.SetStatus(codes.Error, err.Error())
		var be *bus.Error
		if !errors.As(err, &be) {
			e.deps.Logger.ErrorContext(ctx, "handler failed", "endpoint", name, "err", err)
		}
		e.reply(name, req, err, start)
		return
	}
	body, err := json.Marshal(res)
	if err != nil {
		e.reply(name, req, err, start)
		return
	}
	if err := e.respond(req.Reply, body); err != nil {
		e.deps.Logger.WarnContext(ctx, "reply failed", "endpoint", name, "err", err)
	}
	e.observe(name, "ok", start)
}

func (e *Endpoints) respond(reply string, body []byte) error {
	if reply == "" {
		return nil // a publish without reply subject: nobody to answer
	}
	return e.deps.Conn.Publish(reply, body)
}

// errorCode is the code err is answered with: its *bus.Error's, else internal.
func errorCode(err error) mxp.ErrorCode {
	var be *bus.Error
	if errors.As(err, &be) {
		return be.Code
	}
	return mxp.CodeInternal
}

func (e *Endpoints) reply(name string, r Request, err error, start time.Time) {
	code := errorCode(err)
	if r.Reply == "" {
		e.observe(name, string(code), start)
		return
	}
	if rerr := bus.PublishError(e.deps.Conn, r.Reply, err); rerr != nil {
		e.deps.Logger.Warn("error reply failed", "endpoint", name, "err", rerr)
	}
	e.observe(name, string(code), start)
}

func (e *Endpoints) observe(name, code string, start time.Time) {
	e.requests.WithLabelValues(name, code).Inc()
	e.duration.WithLabelValues(name).Observe(time.Since(start).Seconds())
}

// InFlight reports requests being handled.
func (e *Endpoints) InFlight() int { return e.inflight.Len() }

// Stop stops intake (the micro endpoints unsubscribe; requests still arriving get a
// shutting_down reply) and waits for in-flight handlers until ctx ends.
func (e *Endpoints) Stop(ctx context.Context) error {
	stopErr := e.svc.Stop()
	waitErr := e.inflight.Wait(ctx)
	return errors.Join(stopErr, waitErr)
}
