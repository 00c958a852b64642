// Package health tracks whether a service is alive and ready: named readiness checks with
// their last state, a shutdown gate that turns readiness false first thing on shutdown,
// and the /livez and /readyz handlers (JSON detail with each check, its state and error,
// and the config digest).
//
// It must not run business logic in a check; a check answers quickly (it gets a short
// deadline) and reports, it does not repair.
package health

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// CheckFunc reports nil when the dependency it checks is usable.
type CheckFunc func(ctx context.Context) error

// Checker holds the named checks of one service.
type Checker struct {
	mu       sync.RWMutex
	checks   map[string]CheckFunc
	shutdown atomic.Bool
	started  time.Time
	digest   func() string
	// Timeout bounds each check. Default 2s.
	Timeout time.Duration
}

// NewChecker returns a Checker. digest, when non-nil, is shown in /readyz.
func NewChecker(digest func() string) *Checker {
	return &Checker{checks: map[string]CheckFunc{}, started: time.Now(), digest: digest, Timeout: 2 * time.Second}
}

// Add registers or replaces a named readiness check.
func (c *Checker) Add(name string, fn CheckFunc) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checks[name] = fn
}

// SetShuttingDown turns readiness false (the first step of graceful shutdown), so load
// balancers stop sending before intake stops.
func (c *Checker) SetShuttingDown() { c.shutdown.Store(true) }

// ShuttingDown reports whether shutdown has begun.
func (c *Checker) ShuttingDown() bool { return c.shutdown.Load() }

// CheckResult is one check's state.
type CheckResult struct {
	Name       string  `json:"name"`
	OK         bool    `json:"ok"`
	Error      string  `json:"error,omitempty"`
	DurationMS float64 `json:"duration_ms"`
}

// Report is the /readyz body.
type Report struct {
	Ready        bool          `json:"ready"`
	ShuttingDown bool          `json:"shutting_down,omitempty"`
	Checks       []CheckResult `json:"checks"`
	ConfigDigest string        `json:"config_digest,omitempty"`
	UptimeSec    float64       `json:"uptime_seconds"`
}

// Ready runs every check concurrently and reports.
func (c *Checker) Ready(ctx context.Context) Report {
	c.mu.RLock()
	names := make([]string, 0, len(c.checks))
	for n := range c.checks {
		names = append(names, n)
	}
	fns := make([]CheckFunc, len(names))
	sort.Strings(names)
	for i, n := range names {
		fns[i] = c.checks[n]
	}
	c.mu.RUnlock()

	res := make([]CheckResult, len(names))
	var wg sync.WaitGroup
	for i := range names {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, c.Timeout)
			defer cancel()
			start := time.Now()
			err := runCheck(cctx, fns[i])
			r := CheckResult{Name: names[i], OK: err == nil, DurationMS: float64(time.Since(start).Microseconds()) / 1000}
			if err != nil {
				r.Error = err.Error()
			}
			res[i] = r
		})
	}
	wg.Wait()
	rep := Report{Ready: !c.ShuttingDown(), ShuttingDown: c.ShuttingDown(), Checks: res, UptimeSec: time.Since(c.started).Seconds()}
	for _, r := range res {
		rep.Ready = rep.Ready && r.OK
	}
	if c.digest != nil {
		rep.ConfigDigest = c.digest()
	}
	return rep
}

// runCheck runs fn but returns at the deadline even if fn does not.
func runCheck(ctx context.Context, fn CheckFunc) error {
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// LiveHandler serves /livez: 200 while the process runs its loop.
func (c *Checker) LiveHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"live": true, "uptime_seconds": time.Since(c.started).Seconds()})
	})
}

// ReadyHandler serves /readyz: 200 with the report when ready, 503 otherwise.
func (c *Checker) ReadyHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rep := c.Ready(r.Context())
		code := http.StatusOK
		if !rep.Ready {
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, code, rep)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
