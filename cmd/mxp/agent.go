package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
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
  mxp agent echo --compat 127.0.0.1:9001     over the plaintext listener`,
		Flags: func(fs *flag.FlagSet) {
			cf.register(fs)
			caps = nil
			fs.StringVar(&name, "name", "echo", "agent name (`mxp call --to NAME` finds it)")
			fs.StringVar(&id, "id", "", "agent id (a UUID); default a new random id")
			fs.Var(&caps, "capability", "a capability to register (repeatable; default echo)")
			fs.DurationVar(&heartbeat, "heartbeat", 10*time.Second, "heartbeat interval")
			fs.BoolVar(&quiet, "quiet", false, "do not print a line per call")
		},
		Run: func(ctx context.Context, env *cliEnv, args []string) error {
			if len(args) > 0 {
				return usagef("echo takes no arguments")
			}
			agentID := mxp.NewAgentID()
			if id != "" {
				var err error
				if agentID, err = mxp.ParseAgentID(id); err != nil {
					return usagef("--id: %v", err)
				}
			}
			if len(caps) == 0 {
				caps = stringsFlag{"echo"}
			}
			cl, where, err := cf.dial(ctx)
			if err != nil {
				return err
			}
			defer cl.Close()
			req := mxp.RegisterRequest{ID: agentID, Name: name, Capabilities: caps,
				Metadata: mxp.AgentMetadata{Version: mxp.Version, Description: "echoes each call's payload"}}
			if _, err := cl.Register(ctx, req); err != nil {
				return fmt.Errorf("register: %w", err)
			}
			fmt.Fprintf(env.Stdout, "echo agent %s registered as %q (capabilities: %s) via %s\n", agentID, name, caps.String(), where)
			fmt.Fprintf(env.Stdout, "try: mxp call --to %s --data hello\n", name)
			return serveEchoAgent(ctx, env, cl, req, heartbeat, quiet)
		},
	}, "agent")
}

// serveEchoAgent answers calls and heartbeats until ctx ends, then deregisters.
func serveEchoAgent(ctx context.Context, env *cliEnv, cl *client.Client, req mxp.RegisterRequest, every time.Duration, quiet bool) error {
	tick := time.NewTicker(every)
	defer tick.Stop()
	var calls uint64
	for {
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			_, err := cl.Heartbeat(dctx, req.ID, true)
			cancel()
			if err != nil {
				fmt.Fprintf(env.Stderr, "deregister: %v\n", err)
			}
			fmt.Fprintf(env.Stdout, "echo agent %s stopped after %d calls\n", req.ID, calls)
			return nil
		case <-cl.Done():
			return fmt.Errorf("connection to the edge lost: %w", cl.Err())
		case <-tick.C:
			hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			hb, err := cl.Heartbeat(hctx, req.ID, false)
			cancel()
			switch {
			case err != nil && !errors.Is(err, context.Canceled):
				fmt.Fprintf(env.Stderr, "heartbeat: %v\n", err)
			case err == nil && hb.NeedsRegister:
				if _, err := cl.Register(ctx, req); err != nil {
					fmt.Fprintf(env.Stderr, "re-register: %v\n", err)
				}
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
