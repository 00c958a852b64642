package lifecycle

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mxp-mesh/mesh/pkg/common/health"
)

type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(e string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// drainingService admits work until cancelled, then waits for its in-flight work.
func drainingService(name string, rec *recorder, chk *health.Checker, inflight *InFlight, work time.Duration) Service {
	return Func{N: name, F: func(ctx context.Context) error {
		if !inflight.Acquire() {
			return errors.New("intake closed too early")
		}
		go func() {
			time.Sleep(work)
			rec.add(name + ":work-done")
			inflight.Release()
		}()
		<-ctx.Done()
		if !chk.ShuttingDown() {
			rec.add(name + ":ERROR readiness still true at intake stop")
		}
		rec.add(name + ":intake-stopped")
		dctx, cancel := DrainContext(ctx)
		defer cancel()
		if err := inflight.Wait(dctx); err != nil {
			return err
		}
		rec.add(name + ":drained")
		return nil
	}}
}

func TestShutdownOrder(t *testing.T) {
	rec := &recorder{}
	chk := health.NewChecker(nil)
	r := &Runner{Logger: quiet, Health: chk, Signals: []os.Signal{syscall.SIGUSR1}, ShutdownTimeout: 5 * time.Second}
	var inflight InFlight
	r.Add(drainingService("svc", rec, chk, &inflight, 100*time.Millisecond))
	r.OnStop("bus", func(context.Context) error { rec.add("bus-drained"); return nil })
	r.OnStop("http", func(context.Context) error { rec.add("http-stopped"); return nil })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{"svc:intake-stopped", "svc:work-done", "svc:drained", "bus-drained", "http-stopped"}
	if got := rec.list(); !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	if inflight.Acquire() {
		t.Fatal("intake open after shutdown")
	}
}

func TestSignalStartsShutdown(t *testing.T) {
	rec := &recorder{}
	chk := health.NewChecker(nil)
	r := &Runner{Logger: quiet, Health: chk, Signals: []os.Signal{syscall.SIGUSR1}}
	var inflight InFlight
	r.Add(drainingService("svc", rec, chk, &inflight, 0))
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	deadline := time.After(10 * time.Second)
	for {
		syscall.Kill(os.Getpid(), syscall.SIGUSR1)
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if !chk.ShuttingDown() {
				t.Fatal("readiness not turned false")
			}
			return
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatal("signal did not stop the runner")
		}
	}
}

func TestFailuresAndDeadlines(t *testing.T) {
	tests := []struct {
		name    string
		svc     Service
		timeout time.Duration
		wantErr string
	}{
		{"service error stops all", Func{N: "bad", F: func(context.Context) error { return errors.New("boom") }}, time.Second, "bad: boom"},
		{"drain past deadline", Func{N: "slow", F: func(ctx context.Context) error {
			<-ctx.Done()
			dctx, cancel := DrainContext(ctx)
			defer cancel()
			<-dctx.Done()
			return dctx.Err()
		}}, 50 * time.Millisecond, "deadline exceeded"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hookRan := false
			other := Func{N: "other", F: func(ctx context.Context) error { <-ctx.Done(); return nil }}
			r := &Runner{Logger: quiet, ShutdownTimeout: tc.timeout, Signals: []os.Signal{syscall.SIGUSR1}}
			r.Add(tc.svc, other)
			r.OnStop("hook", func(context.Context) error { hookRan = true; return nil })
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
			defer cancel()
			err := r.Run(ctx)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if !hookRan {
				t.Fatal("stop hooks must run even after a failure")
			}
		})
	}
}

func TestInFlight(t *testing.T) {
	var f InFlight
	first, second := f.Acquire(), f.Acquire()
	if !first || !second || f.Len() != 2 {
		t.Fatal("acquire")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := f.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait with work in flight = %v", err)
	}
	if f.Acquire() {
		t.Fatal("acquire after Wait must fail")
	}
	go func() { f.Release(); f.Release() }()
	if err := f.Wait(context.Background()); err != nil || f.Len() != 0 {
		t.Fatal(err)
	}
}

var quiet = slog.New(slog.DiscardHandler)
