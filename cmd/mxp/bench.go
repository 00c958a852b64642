package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// benchOptions are the settings of one `mxp bench` run.
type benchOptions struct {
	To          string
	Rate        float64
	Concurrency int
	Duration    time.Duration
	Size        int
	Connections int
	Timeout     time.Duration
	JSON        bool
}

// BenchReport is the final report; --json prints it as it is.
type BenchReport struct {
	Calls          uint64           `json:"calls"`
	OK             uint64           `json:"ok"`
	ThroughputPerS float64          `json:"throughput_per_s"`
	LatencyUS      BenchLatency     `json:"latency_us"`
	Errors         map[string]int64 `json:"errors"`
}

// BenchLatency holds percentiles of successful calls, in microseconds.
type BenchLatency struct {
	P50  int64 `json:"p50"`
	P90  int64 `json:"p90"`
	P99  int64 `json:"p99"`
	P999 int64 `json:"p999"`
}

func init() {
	var o benchOptions
	var cf connFlags
	register(&command{
		Name:  "bench",
		Short: "load an agent or service through the mesh and report latency percentiles",
		Usage: "--to TARGET [--rate R | --concurrency C] [--duration D] [--size B] [--json]",
		Long: `bench sends Calls of --size bytes to --to (an agent id or name, or a service) for
--duration, either at a fixed --rate (open loop: each call is sent on schedule whatever the answers
before it do, so a stall shows as latency rather than fewer calls) or with --concurrency
calls always in flight (closed loop, the default with 16). A live progress line goes to stderr; the final report gives
throughput, p50/p90/p99/p99.9 latency from an HDR histogram, and errors by kind. --json
prints the report as one object:
{"calls","ok","throughput_per_s","latency_us":{"p50","p90","p99","p999"},"errors":{KIND:N}}

Examples:
  mxp agent echo &                      an agent to load
  mxp bench --to echo --rate 5000 --duration 10s
  mxp bench --to echo --concurrency 64 --duration 10s --size 1024 --json`,
		Flags: func(fs *flag.FlagSet) {
			cf.register(fs)
			fs.StringVar(&o.To, "to", "", "target: agent id, agent name or service name (required)")
			fs.Float64Var(&o.Rate, "rate", 0, "calls per second (open loop); 0 uses --concurrency")
			fs.IntVar(&o.Concurrency, "concurrency", 16, "calls in flight (closed loop), when --rate is 0")
			fs.DurationVar(&o.Duration, "duration", 10*time.Second, "how long to send")
			fs.IntVar(&o.Size, "size", 256, "payload bytes per call")
			fs.IntVar(&o.Connections, "connections", 1, "connections to the edge, used in turn")
			fs.DurationVar(&o.Timeout, "timeout", 5*time.Second, "per-call timeout (and of the handshake and the lookup of --to)")
			fs.BoolVar(&o.JSON, "json", false, "print the final report as JSON")
		},
		Run: func(ctx context.Context, env *cliEnv, args []string) error {
			switch {
			case len(args) > 0:
				return usagef("unexpected argument %q", args[0])
			case o.To == "":
				return usagef("--to is required")
			case o.Rate < 0, o.Rate == 0 && o.Concurrency <= 0:
				return usagef("--rate must be positive, or --concurrency at least 1")
			case o.Duration <= 0, o.Size < 0, o.Size > mxp.MaxPayloadSize-mxp.CallHeaderSize, o.Connections < 1:
				return usagef("--duration, --size and --connections must be positive (size at most %d)", mxp.MaxPayloadSize-mxp.CallHeaderSize)
			}
			conns := make([]*mxp.Conn, 0, o.Connections)
			defer func() {
				for _, c := range conns {
					c.Close()
				}
			}()
			// Each handshake, and the lookup of --to, take at most --timeout (as a call does).
			for range o.Connections {
				dctx, cancel := context.WithTimeout(ctx, o.Timeout)
				c, _, err := cf.dial(dctx)
				cancel()
				if err != nil {
					return timeoutOr(err, o.Timeout)
				}
				conns = append(conns, c)
			}
			rctx, cancel := context.WithTimeout(ctx, o.Timeout)
			target, err := resolveTarget(rctx, conns[0], o.To)
			cancel()
			if err != nil {
				return timeoutOr(err, o.Timeout)
			}
			rep, ended := runBench(ctx, env, conns, target, o)
			if o.JSON {
				if err := json.NewEncoder(env.Stdout).Encode(rep); err != nil {
					return err
				}
			} else {
				printBenchReport(env, o, target, rep)
			}
			if ended != nil {
				fmt.Fprintf(env.Stderr, "bench: stopped early: %v (the report covers the calls before it)\n", ended)
				return exitError{1}
			}
			return nil
		},
	})
}

// benchRun collects the results of one run; safe for concurrent use.
type benchRun struct {
	mu     sync.Mutex
	hist   latencyUS
	errs   map[string]int64
	calls  atomic.Uint64
	ok     atomic.Uint64
	failed atomic.Uint64
}

func (r *benchRun) record(d time.Duration, err error) {
	r.calls.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.failed.Add(1)
		r.errs[errorKind(err)]++
		return
	}
	r.ok.Add(1)
	r.hist.record(d)
}

func errorKind(err error) string {
	var re *mxp.RemoteError
	switch {
	case errors.As(err, &re):
		return string(re.Code)
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, mxp.ErrConnClosed):
		return "closed"
	}
	return "transport"
}

// errConnectionEnded is runBench's cause when a connection to the edge ended mid-run
// (the mesh stopped): every later call on it would fail at once, and a closed loop would
// count millions of "closed" errors until --duration ran out.
var errConnectionEnded = errors.New("the connection to the edge ended")

// runBench runs the load until o.Duration passes, ctx ends, or a connection ends; in the
// last case it stops at once and returns why with the report.
func runBench(ctx context.Context, env *cliEnv, conns []*mxp.Conn, target mxp.AgentID, o benchOptions) (BenchReport, error) {
	r := &benchRun{hist: newLatencyUS(), errs: map[string]int64{}}
	payload := []byte(strings.Repeat("x", o.Size))
	durCtx, stopDur := context.WithTimeout(ctx, o.Duration)
	defer stopDur()
	runCtx, stop := context.WithCancelCause(durCtx)
	defer stop(nil)
	start := time.Now()
	for _, c := range conns {
		go func() {
			select {
			case <-c.Done():
				stop(fmt.Errorf("%w after %v: %v", errConnectionEnded, time.Since(start).Round(time.Millisecond), c.Err()))
			case <-runCtx.Done():
			}
		}()
	}
	var next atomic.Uint64
	call := func() {
		c := conns[next.Add(1)%uint64(len(conns))]
		cctx, cancel := context.WithTimeout(context.Background(), o.Timeout)
		t0 := time.Now()
		_, err := c.CallAgent(cctx, target, payload, o.Timeout)
		r.record(time.Since(t0), err)
		cancel()
	}
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-tick.C:
				r.mu.Lock()
				p50, p99 := r.hist.quantile(50), r.hist.quantile(99)
				r.mu.Unlock()
				el := time.Since(start).Seconds()
				fmt.Fprintf(env.Stderr, "\r%5.1fs  calls %-9d ok %-9d errors %-6d %9.0f/s  p50 %6dµs  p99 %6dµs ",
					el, r.calls.Load(), r.ok.Load(), r.failed.Load(), float64(r.ok.Load())/el, p50, p99)
			}
		}
	}()
	var wg sync.WaitGroup
	if o.Rate > 0 {
		interval := time.Duration(float64(time.Second) / o.Rate)
		const maxOutstanding = 100_000
		var outstanding atomic.Int64
	loop:
		for i := int64(0); ; i++ {
			due := start.Add(time.Duration(i) * interval)
			if d := time.Until(due); d > 0 {
				select {
				case <-runCtx.Done():
					break loop
				case <-time.After(d):
				}
			} else if runCtx.Err() != nil {
				break
			}
			if outstanding.Load() >= maxOutstanding {
				r.record(0, &mxp.RemoteError{Code: mxp.CodeOverloaded, Message: "too many calls outstanding in the client"})
				continue
			}
			outstanding.Add(1)
			wg.Go(func() {
				defer outstanding.Add(-1)
				call()
			})
		}
	} else {
		for range o.Concurrency {
			wg.Go(func() {
				for runCtx.Err() == nil {
					call()
				}
			})
		}
	}
	<-runCtx.Done()
	wg.Wait()
	<-progressDone
	elapsed := time.Since(start)
	fmt.Fprintln(env.Stderr)

	r.mu.Lock()
	defer r.mu.Unlock()
	rep := BenchReport{Calls: r.calls.Load(), OK: r.ok.Load(), Errors: r.errs,
		ThroughputPerS: float64(r.ok.Load()) / elapsed.Seconds(),
		LatencyUS: BenchLatency{P50: r.hist.quantile(50), P90: r.hist.quantile(90),
			P99: r.hist.quantile(99), P999: r.hist.quantile(99.9)}}
	if cause := context.Cause(runCtx); errors.Is(cause, errConnectionEnded) {
		return rep, cause
	}
	return rep, nil
}

func printBenchReport(env *cliEnv, o benchOptions, target mxp.AgentID, rep BenchReport) {
	w := env.Stdout
	mode := fmt.Sprintf("%d in flight", o.Concurrency)
	if o.Rate > 0 {
		mode = fmt.Sprintf("%g calls/s", o.Rate)
	}
	fmt.Fprintf(w, "target      %s (%s)\n", o.To, target)
	fmt.Fprintf(w, "load        %s for %v, %d-byte payload, %d connection(s)\n", mode, o.Duration, o.Size, o.Connections)
	fmt.Fprintf(w, "calls       %d (ok %d, errors %d)\n", rep.Calls, rep.OK, rep.Calls-rep.OK)
	fmt.Fprintf(w, "throughput  %.1f calls/s\n", rep.ThroughputPerS)
	fmt.Fprintf(w, "latency     p50 %dµs  p90 %dµs  p99 %dµs  p99.9 %dµs\n",
		rep.LatencyUS.P50, rep.LatencyUS.P90, rep.LatencyUS.P99, rep.LatencyUS.P999)
	if len(rep.Errors) > 0 {
		kinds := make([]string, 0, len(rep.Errors))
		for k := range rep.Errors {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		parts := make([]string, len(kinds))
		for i, k := range kinds {
			parts[i] = fmt.Sprintf("%s %d", k, rep.Errors[k])
		}
		fmt.Fprintf(w, "errors      %s\n", strings.Join(parts, ", "))
	}
}
