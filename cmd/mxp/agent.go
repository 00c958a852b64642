package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mxp-mesh/mesh/pkg/mxp"
	"github.com/mxp-mesh/mesh/services/edge/client"
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
		quiet     bool
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
  mxp agent echo --count 10000 --quiet       ten thousand agents, for load tests`,
		Flags: func(fs *flag.FlagSet) {
			cf.register(fs)
			caps = nil
			fs.StringVar(&name, "name", "echo", "agent `NAME` (mxp call --to NAME finds it)")
			fs.StringVar(&id, "id", "", "agent id (a UUID); default a new random id")
			fs.Var(&caps, "capability", "a capability to register (repeatable; default echo)")
			fs.DurationVar(&heartbeat, "heartbeat", 0, "heartbeat interval; 0: the one the registry asks for (10s if it does not say)")
			fs.BoolVar(&quiet, "quiet", false, "do not print a line per call")
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
			if count > 1 {
				if id != "" {
					return usagef("--id names one agent; it cannot be used with --count")
				}
				return runEchoAgents(ctx, env, &cf, name, caps, heartbeat, count)
			}
			agentID := mxp.NewAgentID()
			if id != "" {
				var err error
				if agentID, err = mxp.ParseAgentID(id); err != nil {
					return usagef("--id: %v", err)
				}
			}
			cl, where, err := cf.dial(ctx)
			if err != nil {
				return err
			}
			defer cl.Close()
			req := echoRegistration(agentID, name, caps)
			rr, err := cl.Register(ctx, req)
			if err != nil {
				return fmt.Errorf("register: %w", err)
			}
			fmt.Fprintf(env.Stdout, "echo agent %s registered as %q (capabilities: %s) via %s\n", agentID, name, caps.String(), where)
			fmt.Fprintf(env.Stdout, "try: mxp call --to %s --data hello\n", name)
			calls, err := serveEchoAgent(ctx, env, cl, req, rr, heartbeat, quiet, nil)
			if err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "echo agent %s stopped after %d calls\n", agentID, calls)
			return nil
		},
	}, "agent")
}

func echoRegistration(id mxp.AgentID, name string, caps []string) mxp.RegisterRequest {
	return mxp.RegisterRequest{ID: id, Name: name, Capabilities: caps,
		Metadata: mxp.AgentMetadata{Version: mxp.Version, Description: "echoes each call's payload"}}
}

// runEchoAgents runs count echo agents, each on its own connection, until ctx ends.
func runEchoAgents(ctx context.Context, env *cliEnv, cf *connFlags, name string, caps []string, every time.Duration, count int) error {
	var (
		wg       sync.WaitGroup
		started  atomic.Int64
		calls    atomic.Uint64
		firstErr atomic.Value
	)
	sem := make(chan struct{}, 64)     // connections set up at once
	leaving := make(chan struct{}, 64) // agents deregistering at once when ctx ends
	for i := 1; i <= count && ctx.Err() == nil; i++ {
		sem <- struct{}{}
		wg.Go(func() {
			cl, _, err := cf.dial(ctx)
			if err == nil {
				req := echoRegistration(mxp.NewAgentID(), fmt.Sprintf("%s-%d", name, i), caps)
				var rr mxp.RegisterResponse
				if rr, err = cl.Register(ctx, req); err == nil {
					<-sem
					started.Add(1)
					n, _ := serveEchoAgent(ctx, env, cl, req, rr, every, true, leaving)
					calls.Add(n)
					cl.Close()
					return
				}
				cl.Close()
			}
			<-sem
			firstErr.CompareAndSwap(nil, err)
		})
	}
	// Report once every agent is up (or failed).
	for range cap(sem) {
		sem <- struct{}{}
	}
	if err, _ := firstErr.Load().(error); err != nil && ctx.Err() == nil {
		fmt.Fprintf(env.Stderr, "some agents failed to start: %v\n", err)
	}
	fmt.Fprintf(env.Stdout, "%d echo agents registered as %s-1..%s-%d\n", started.Load(), name, name, count)
	for range cap(sem) {
		<-sem
	}
	wg.Wait()
	fmt.Fprintf(env.Stdout, "%d echo agents stopped after %d calls\n", started.Load(), calls.Load())
	return nil
}

// defaultEchoHeartbeat is the echo agent's heartbeat interval when neither --heartbeat nor
// the registry gives one (the SDK's default).
const defaultEchoHeartbeat = 10 * time.Second

// echoHeartbeat is the interval an echo agent heartbeats at: every (--heartbeat) when set,
// otherwise the interval the registry asked for in rr, otherwise defaultEchoHeartbeat. An
// agent that kept a fixed 10s against a registry with a shorter lease lost its lease
// between heartbeats.
func echoHeartbeat(every time.Duration, rr mxp.RegisterResponse) time.Duration {
	switch {
	case every > 0:
		return every
	case rr.HeartbeatInterval() > 0:
		return rr.HeartbeatInterval()
	}
	return defaultEchoHeartbeat
}

// serveEchoAgent answers calls and heartbeats until ctx ends, then deregisters. It
// heartbeats at echoHeartbeat(every, rr), and follows the interval of each re-registration
// (the registry's lease may have changed). leaving,
// when not nil, bounds how many agents deregister at once (its capacity): ten thousand
// agents stopped together would otherwise send ten thousand deregistrations in the same
// instant, more than the edge and the registry answer within the deadline on a small
// machine.
func serveEchoAgent(ctx context.Context, env *cliEnv, cl *client.Client, req mxp.RegisterRequest, rr mxp.RegisterResponse, every time.Duration, quiet bool, leaving chan struct{}) (uint64, error) {
	tick := time.NewTicker(echoHeartbeat(every, rr))
	defer tick.Stop()
	var calls uint64
	for {
		select {
		case <-ctx.Done():
			if leaving != nil {
				leaving <- struct{}{}
				defer func() { <-leaving }()
			}
			dctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			_, err := cl.Heartbeat(dctx, req.ID, true)
			cancel()
			if err != nil && !quiet {
				fmt.Fprintf(env.Stderr, "deregister: %v\n", err)
			}
			return calls, nil
		case <-cl.Done():
			return calls, fmt.Errorf("connection to the edge lost: %w", cl.Err())
		case <-tick.C:
			hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			hb, err := cl.Heartbeat(hctx, req.ID, false)
			cancel()
			switch {
			case err != nil && !errors.Is(err, context.Canceled):
				fmt.Fprintf(env.Stderr, "heartbeat: %v\n", err)
			case err == nil && hb.NeedsRegister:
				rr, err := cl.Register(ctx, req)
				if err != nil {
					fmt.Fprintf(env.Stderr, "re-register: %v\n", err)
					break
				}
				tick.Reset(echoHeartbeat(every, rr))
			}
		case f := <-cl.Inbound():
			if f.Type != mxp.TypeCall {
				continue
			}
			cp, err := mxp.DecodeCall(f.Payload)
			if err != nil {
				_ = cl.RespondError(ctx, f, mxp.CodeInvalidPayload, err.Error())
				continue
			}
			if err := cl.Respond(ctx, f, cp.Data); err != nil {
				fmt.Fprintf(env.Stderr, "respond: %v\n", err)
				continue
			}
			calls++
			if !quiet {
				fmt.Fprintf(env.Stdout, "call %d: %d bytes echoed\n", calls, len(cp.Data))
			}
		}
	}
}
