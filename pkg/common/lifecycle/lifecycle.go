// Package lifecycle runs services and shuts them down gracefully, the same way in each
// cmd/mxp-<name> main and in `mxp dev` (many services, one process). A service is a
// module with New(cfg, deps) and Run(ctx); Run returns once ctx is cancelled and its
// in-flight work is drained.
//
// Shutdown order, on SIGINT/SIGTERM or when a service fails:
//  1. readiness goes false (health.Checker.SetShuttingDown), then PreStopDelay passes so
//     load balancers notice;
//  2. every service's Run context is cancelled: the service stops intake (stops its micro
//     endpoints) and drains in-flight work, bounded by DrainContext's deadline;
//  3. the stop hooks run in the order added: drain the bus connections, stop the HTTP
//     server, stop the embedded NATS server.
//
// A second signal during shutdown cancels the drain deadline (forced stop).
//
// It must not know any service; services reach it only through Service and InFlight.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/mxp-mesh/mesh/pkg/common/health"
)

// Service is one module of the mesh.
type Service interface {
	// Name is used in logs.
	Name() string
	// Run serves until ctx is cancelled, then stops intake, drains in-flight work (use
	// DrainContext for the deadline) and returns.
	Run(ctx context.Context) error
}

// Func adapts a function to Service.
type Func struct {
	N string
	F func(ctx context.Context) error
}

// Name implements Service.
func (f Func) Name() string { return f.N }

// Run implements Service.
func (f Func) Run(ctx context.Context) error { return f.F(ctx) }

type hook struct {
	name string
	fn   func(ctx context.Context) error
}

// Runner runs services and performs the ordered shutdown.
type Runner struct {
	Logger *slog.Logger
	// Health turns not-ready first on shutdown; nil skips that step.
	Health *health.Checker
	// ShutdownTimeout bounds the whole shutdown (drain plus stop hooks). Default 30s.
	ShutdownTimeout time.Duration
	// PreStopDelay is the pause between readiness false and intake stop. Default 0.
	PreStopDelay time.Duration
	// Signals that start shutdown. Default SIGINT and SIGTERM.
	Signals []os.Signal

	services []Service
	hooks    []hook
}

// Add registers services to run.
func (r *Runner) Add(s ...Service) { r.services = append(r.services, s...) }

// OnStop registers a hook run after every service has returned, in the order added.
func (r *Runner) OnStop(name string, fn func(ctx context.Context) error) {
	r.hooks = append(r.hooks, hook{name, fn})
}

type drainKey struct{}

type drainState struct {
	mu  sync.Mutex
	ctx context.Context
}

// DrainContext returns the context a service drains under once its Run context is
// cancelled: it carries the shutdown deadline and is cancelled on a forced stop. Outside
// a Runner it is a context with a 30 s timeout.
func DrainContext(runCtx context.Context) (context.Context, context.CancelFunc) {
	if st, ok := runCtx.Value(drainKey{}).(*drainState); ok {
		st.mu.Lock()
		c := st.ctx
		st.mu.Unlock()
		if c != nil {
			return context.WithCancel(c)
		}
	}
	return context.WithTimeout(context.WithoutCancel(runCtx), 30*time.Second)
}

// Run starts every service and blocks until shutdown completes. It returns the first
// service error or the errors of the stop hooks.
func (r *Runner) Run(ctx context.Context) error {
	log := r.Logger
	if log == nil {
		log = slog.Default()
	}
	timeout := r.ShutdownTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	sigs := r.Signals
	if len(sigs) == 0 {
		sigs = []os.Signal{os.Interrupt, syscall.SIGTERM}
	}
	sigCh := make(chan os.Signal, 2)
	signal.Notify(sigCh, sigs...)
	defer signal.Stop(sigCh)

	st := &drainState{}
	runCtx, cancelRun := context.WithCancel(context.WithValue(context.WithoutCancel(ctx), drainKey{}, st))
	defer cancelRun()

	type result struct {
		name string
		err  error
	}
	results := make(chan result, len(r.services))
	for _, s := range r.services {
		go func() {
			err := s.Run(runCtx)
			results <- result{s.Name(), err}
		}()
	}
	log.Info("services started", "count", len(r.services))

	var firstErr error
	running := len(r.services)
	select {
	case <-ctx.Done():
		log.Info("shutdown requested", "reason", context.Cause(ctx))
	case sig := <-sigCh:
		log.Info("shutdown requested", "signal", sig.String())
	case res := <-results:
		running--
		if res.err != nil {
			firstErr = fmt.Errorf("%s: %w", res.name, res.err)
			log.Error("service failed; shutting down", "service", res.name, "err", res.err)
		} else {
			log.Info("service stopped; shutting down", "service", res.name)
		}
	}

	// 1. Readiness false.
	if r.Health != nil {
		r.Health.SetShuttingDown()
	}
	drainCtx, cancelDrain := context.WithTimeout(context.Background(), timeout)
	defer cancelDrain()
	st.mu.Lock()
	st.ctx = drainCtx
	st.mu.Unlock()
	go func() {
		select {
		case sig := <-sigCh:
			log.Warn("second signal: forcing shutdown", "signal", sig.String())
			cancelDrain()
		case <-drainCtx.Done():
		}
	}()
	if r.PreStopDelay > 0 {
		select {
		case <-time.After(r.PreStopDelay):
		case <-drainCtx.Done():
		}
	}

	// 2. Stop intake and drain in-flight work.
	cancelRun()
	for running > 0 {
		select {
		case res := <-results:
			running--
			if res.err != nil && !errors.Is(res.err, context.Canceled) {
				log.Error("service stopped with error", "service", res.name, "err", res.err)
				if firstErr == nil {
					firstErr = fmt.Errorf("%s: %w", res.name, res.err)
				}
			}
		case <-drainCtx.Done():
			log.Error("services did not drain before the shutdown deadline", "still_running", running)
			if firstErr == nil {
				firstErr = errors.New("lifecycle: shutdown deadline exceeded while draining services")
			}
			running = 0
		}
	}

	// 3. Stop hooks: bus drain, HTTP, embedded server. They get a little time even when
	// the drain used the whole budget.
	hookCtx := drainCtx
	if drainCtx.Err() != nil {
		var cancel context.CancelFunc
		hookCtx, cancel = context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
	}
	var hookErrs []error
	for _, h := range r.hooks {
		if err := h.fn(hookCtx); err != nil {
			log.Error("stop hook failed", "hook", h.name, "err", err)
			hookErrs = append(hookErrs, fmt.Errorf("%s: %w", h.name, err))
		}
	}
	log.Info("shutdown complete")
	return errors.Join(append([]error{firstErr}, hookErrs...)...)
}
