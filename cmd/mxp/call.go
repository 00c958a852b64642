package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// timeoutOr is err as a client command reports it: the end of --timeout as "timeout: no
// answer within D" (the step that ran out does not matter to the user), anything else as
// it is.
func timeoutOr(err error, timeout time.Duration) error {
	var na *nothingAnswersError
	if errors.Is(err, context.DeadlineExceeded) && !errors.As(err, &na) {
		return fmt.Errorf("timeout: no answer within %v", timeout)
	}
	return err
}

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
agent id, the name of a registered agent, or a service (` + servicesServed + `).
--data is sent as it is (JSON or text). An Error is printed as "error: CODE:
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
			fs.DurationVar(&timeout, "timeout", 30*time.Second, "how long the command may take, from its first packet (handshake, lookup and call)")
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
			// --timeout bounds the whole command, from the handshake's first packet.
			deadline := time.Now().Add(timeout)
			cctx, cancel := context.WithDeadline(ctx, deadline)
			defer cancel()
			cl, _, err := cf.dial(cctx)
			if err != nil {
				return timeoutOr(err, timeout)
			}
			defer cl.Close()
			target, err := resolveTarget(cctx, cl, to)
			if err != nil {
				return timeoutOr(err, timeout)
			}
			out, err := cl.CallAgent(cctx, target, []byte(data), time.Until(deadline))
			var re *mxp.RemoteError
			switch {
			case errors.As(err, &re):
				fmt.Fprintf(env.Stderr, "error: %s: %s\n", string(re.Code), re.Message)
				return exitError{1}
			case err != nil:
				return timeoutOr(err, timeout)
			}
			fmt.Fprintf(env.Stdout, "%s\n", out)
			return nil
		},
	})
}
