package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mxp-mesh/mesh/pkg/agent"
	"github.com/mxp-mesh/mesh/pkg/mxp"
	"github.com/mxp-mesh/mesh/pkg/mxp/transport"
)

func init() {
	register(&command{
		Name:  "agent",
		Short: "run a ready-made agent (echo)",
		Long: `agent runs a ready-made agent against the mesh, for trying things and for benchmarks.

Examples:
  mxp agent echo
  mxp agent echo --name echo-2 --capability echo --capability demo`,
	})
	var (
		cf        connFlags
		name, id  string
		caps      stringsFlag
		heartbeat time.Duration
		verbose   bool
		count     int
	)
	register(&command{
		Name:  "echo",
		Short: "an agent that answers each Call with its payload",
		Usage: "",
		Long: `echo connects to the mesh (the edge in the data directory of a running ` + "`mxp dev`" + `),
registers an agent, heartbeats, and answers every Call with the Call's own data. Ctrl-C
deregisters it and exits.

Examples:
  mxp agent echo
  mxp agent echo --name echo-eu --capability echo --capability eu
  mxp agent echo --compat 127.0.0.1:9001     over the plaintext listener
  mxp agent echo --verbose                   a line per call
  mxp agent echo --count 10000               ten thousand agents, for load tests`,
		Flags: func(fs *flag.FlagSet) {
			cf.register(fs)
			caps = nil
			fs.StringVar(&name, "name", "echo", "agent `NAME` (mxp call --to NAME finds it)")
			fs.StringVar(&id, "id", "", "agent id (a UUID); default a new random id")
			fs.Var(&caps, "capability", "a capability to register (repeatable; default echo)")
			fs.DurationVar(&heartbeat, "heartbeat", 0, "heartbeat interval; 0: the one the registry asks for (10s if it does not say)")
			fs.BoolVar(&verbose, "verbose", false, "print one line per call (off: a bench of a million calls would print a million lines)")
			fs.IntVar(&count, "count", 1, "run this many echo agents, each on its own connection, named NAME-1..NAME-N (load tests)")
		},
		Run: func(ctx context.Context, env *cliEnv, args []string) error {
			if len(args) > 0 {
				return usagef("echo takes no arguments")
			}
			if count < 1 {
				return usagef("--count must be at least 1")
			}
			if len(caps) == 0 {
				caps = stringsFlag{"echo"}
			}
			if count > 1 && id != "" {
				return usagef("--id names one agent; it cannot be used with --count")
			}
			t, err := cf.target()
			if err != nil {
				return err
			}
			if count > 1 {
				return runEchoAgents(ctx, env, t, name, caps, heartbeat, count)
			}
			a, err := newEchoAgent(env, t, name, id, caps, heartbeat, true, verbose, nil)
			if err != nil {
				return err
			}
			calls, err := runEchoAgent(ctx, a, t)
			if a.State() != agent.StateInit { // it ran
				fmt.Fprintf(env.Stdout, "echo agent %s stopped after %d calls\n", a.ID(), calls.Load())
			}
			return err
		},
	}, "agent")
}

// echoAgent is an SDK agent that answers every Call with the Call's own data, and counts.
type echoAgent struct {
	*agent.Agent
	calls *atomic.Uint64
}

// newEchoAgent builds the echo agent: an agent of the SDK (pkg/agent), as any user's
// agent would be, so the README's tour and `mxp bench` measure the SDK. Its handler
// returns at once, so it runs inline (Config.InlineHandlers): no goroutine hand-off
// between the socket and the handler, and no pool of workers to keep (one, idle: the
// agent serves no streams), which --count multiplies by thousands. When announce, it
// prints a line once registered; when verbose, one per call. log nil: warnings to stderr.
func newEchoAgent(env *cliEnv, t edgeTarget, name, id string, caps []string, heartbeat time.Duration, announce, verbose bool, log *slog.Logger) (echoAgent, error) {
	if log == nil {
		log = slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	a, err := agent.New(agent.Config{Name: name, ID: id, Capabilities: caps, Version: mxp.Version,
		Description: "echoes each call's payload", EdgeAddr: t.addr, EdgeKey: t.key, KeyFile: t.keyFile, HandshakeTimeout: handshakeTimeout,
		HeartbeatInterval: heartbeat, InlineHandlers: true, Workers: 1, QueueSize: 1, Logger: log})
	if err != nil {
		return echoAgent{}, usagef("%v", err)
	}
	calls := new(atomic.Uint64)
	a.HandleCall(func(ctx context.Context, payload []byte) ([]byte, error) {
		n := calls.Add(1)
		if verbose {
			fmt.Fprintf(env.Stdout, "call %d: %d bytes echoed\n", n, len(payload))
		}
		return payload, nil
	})
	if announce {
		a.Lifecycle().OnTransition(func(tr agent.Transition) {
			if tr.From == agent.StateReady && tr.To == agent.StateActive {
				fmt.Fprintf(env.Stdout, "echo agent %s registered as %q (capabilities: %s) via %s\n", a.ID(), name, strings.Join(caps, ","), t.where)
				fmt.Fprintf(env.Stdout, "try: %s call --to %s --data hello%s\n", invokedAs(), name, dataDirFlag(t.dataDir))
			}
		})
	}
	return echoAgent{Agent: a, calls: calls}, nil
}

// runEchoAgent runs a until ctx ends (then it retires: drains, deregisters), over the
// secure transport with reconnection (Agent.Run), or over the plaintext listener.
func runEchoAgent(ctx context.Context, a echoAgent, t edgeTarget) (*atomic.Uint64, error) {
	if t.compat == "" {
		start := time.Now()
		err := a.Run(ctx)
		if err != nil && a.State() == agent.StateInit && ctx.Err() == nil {
			if c := mxp.ErrorCodeFor(err); c == mxp.CodeUnreachable || c == mxp.CodeTimeout || errors.Is(err, transport.ErrHandshakeTimeout) {
				// The first handshake got no answer: say so as every client command does.
				err = &nothingAnswersError{Addr: t.addr, After: time.Since(start), From: t.from, Err: err}
			}
		}
		return a.calls, err
	}
	c, err := mxp.DialPlaintext(ctx, t.compat)
	if err != nil {
		return a.calls, err
	}
	return a.calls, a.RunConn(ctx, c)
}

// runEchoAgents runs count echo agents, each on its own connection, until ctx ends; then
// retires them at most 64 at a time: ten thousand agents stopped together would send ten
// thousand deregistrations in the same instant, more than the edge and the registry
// answer within the deadline on a small machine.
func runEchoAgents(ctx context.Context, env *cliEnv, t edgeTarget, name string, caps []string, every time.Duration, count int) error {
	var (
		wg       sync.WaitGroup
		started  atomic.Int64
		calls    atomic.Uint64
		firstErr atomic.Value
	)
	agents := make([]echoAgent, 0, count)
	stopped := make([]chan struct{}, 0, count) // closed when the agent's Run returned
	ups := make([]chan struct{}, 0, count)     // closed when the agent became active
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	warned := &firstWarning{} // thousands of agents that cannot register would log thousands of lines
	for i := 1; i <= count && ctx.Err() == nil; i++ {
		a, err := newEchoAgent(env, t, fmt.Sprintf("%s-%d", name, i), "", caps, every, false, false, slog.New(warned))
		if err != nil {
			return err
		}
		up := make(chan struct{})
		a.Lifecycle().OnTransition(func(tr agent.Transition) {
			if tr.From == agent.StateReady && tr.To == agent.StateActive { // once per agent
				started.Add(1)
				close(up)
			}
		})
		done := make(chan struct{})
		agents, stopped, ups = append(agents, a), append(stopped, done), append(ups, up)
		wg.Go(func() {
			defer close(done)
			n, err := runEchoAgent(runCtx, a, t)
			calls.Add(n.Load())
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
			}
		})
		if i%64 == 0 || i == count { // connections set up 64 at a time
			// An agent the mesh does not register (a limit) keeps trying in the
			// background (the SDK's backoff); the next batch starts after a while anyway.
			batch, cancel := context.WithTimeout(ctx, defaultDialTimeout)
			for j := max(0, len(agents)-64); j < len(agents); j++ {
				select {
				case <-batch.Done():
				case <-stopped[j]:
				case <-ups[j]:
				}
			}
			cancel()
		}
	}
	if err, _ := firstErr.Load().(error); err != nil && ctx.Err() == nil {
		fmt.Fprintf(env.Stderr, "some agents failed to start: %v\n", err)
	}
	if n := int64(len(agents)) - started.Load(); n > 0 && ctx.Err() == nil {
		fmt.Fprintf(env.Stderr, "%d agents are not registered yet and keep trying: %s\n", n, warned.String())
	}
	fmt.Fprintf(env.Stdout, "%d echo agents registered as %s-1..%s-%d\n", started.Load(), name, name, count)
	<-ctx.Done()
	sem := make(chan struct{}, 64)
	for i, a := range agents {
		sem <- struct{}{}
		go func() {
			a.Retire()
			<-stopped[i]
			<-sem
		}()
	}
	wg.Wait()
	fmt.Fprintf(env.Stdout, "%d echo agents stopped after %d calls\n", started.Load(), calls.Load())
	return nil
}

// firstWarning is a slog.Handler that keeps the first warning (with its error) and drops
// every record: for --count, one line instead of one per agent and retry.
type firstWarning struct{ first atomic.Value }

func (h *firstWarning) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h *firstWarning) Handle(_ context.Context, r slog.Record) error {
	if h.first.Load() == nil {
		msg := r.Message
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "error" {
				msg += ": " + a.Value.String()
			}
			return true
		})
		h.first.CompareAndSwap(nil, msg)
	}
	return nil
}

func (h *firstWarning) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *firstWarning) WithGroup(string) slog.Handler      { return h }

// String is the first warning, or "" when there was none.
func (h *firstWarning) String() string {
	s, _ := h.first.Load().(string)
	return s
}
