package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

func init() {
	var (
		cf      connFlags
		to      string
		data    string
		timeout time.Duration
	)
	register(&command{
		Name:  "call",
		Short: "send one Call to an agent or service and print the Response",
		Usage: "--to AGENT_ID|NAME|SERVICE --data JSON|TEXT",
		Long: `call sends one Call through the mesh and prints the Response's payload. --to is an
agent id, the name of a registered agent, or a service (registry, inference, tools,
policy). --data is sent as it is (JSON or text). An Error is printed as "error: CODE:
message" on stderr, with exit status 1.

Examples:
  mxp call --to echo --data hello
  mxp call --to 6ba7b810-9dad-11d1-80b4-00c04fd430c8 --data '{"n":1}' --timeout 5s
  mxp call --to registry --data '{"capability":"echo"}'
  mxp call --to inference --data '{"messages":[{"role":"user","content":"hi"}]}'`,
		Flags: func(fs *flag.FlagSet) {
			cf.register(fs)
			fs.StringVar(&to, "to", "", "target: agent id, agent name or service name (required)")
			fs.StringVar(&data, "data", "", "the Call's data, sent as is")
			fs.DurationVar(&timeout, "timeout", 30*time.Second, "how long the mesh may take to answer")
		},
		Run: func(ctx context.Context, env *cliEnv, args []string) error {
			if len(args) > 0 {
				return usagef("unexpected argument %q", args[0])
			}
			if to == "" {
				return usagef("--to is required")
			}
			if timeout <= 0 {
				return usagef("--timeout must be positive")
			}
			cl, _, err := cf.dial(ctx)
			if err != nil {
				return err
			}
			defer cl.Close()
			target, err := resolveTarget(ctx, cl, to)
			if err != nil {
				return err
			}
			cctx, cancel := context.WithTimeout(ctx, timeout+2*time.Second)
			defer cancel()
			out, err := cl.Call(cctx, target, []byte(data), timeout)
			var re *mxp.RemoteError
			switch {
			case errors.As(err, &re):
				fmt.Fprintf(env.Stderr, "error: %s: %s\n", string(re.Code), re.Message)
				return exitError{1}
			case errors.Is(err, context.DeadlineExceeded):
				fmt.Fprintf(env.Stderr, "error: timeout: no answer within %v\n", timeout)
				return exitError{1}
			case err != nil:
				return err
			}
			fmt.Fprintf(env.Stdout, "%s\n", out)
			return nil
		},
	})
}
