package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// targetFlags are the flags of a command that reaches one agent or service (call,
// stream): the connection, --to and --timeout.
type targetFlags struct {
	connFlags
	to      string
	timeout time.Duration
}

func (t *targetFlags) register(fs *flag.FlagSet, timeoutUsage string) {
	t.connFlags.register(fs)
	fs.StringVar(&t.to, "to", "", "target: agent id, agent name or service name (required)")
	fs.DurationVar(&t.timeout, "timeout", 30*time.Second, timeoutUsage)
}

// open checks --to and --timeout, connects and resolves --to, all within ctx (the caller
// bounds it with --timeout). Errors are as the command reports them (timeoutOr).
func (t *targetFlags) open(ctx context.Context) (*mxp.Conn, mxp.AgentID, error) {
	if t.to == "" {
		return nil, mxp.AgentID{}, usagef("--to is required")
	}
	if t.timeout <= 0 {
		return nil, mxp.AgentID{}, usagef("--timeout must be positive")
	}
	cl, _, err := t.dial(ctx)
	if err != nil {
		return nil, mxp.AgentID{}, timeoutOr(err, t.timeout)
	}
	target, err := resolveTarget(ctx, cl, t.to)
	if err != nil {
		cl.Close()
		return nil, mxp.AgentID{}, timeoutOr(err, t.timeout)
	}
	return cl, target, nil
}

// remoteResult reports the outcome of a request to an agent: an MXP Error as "error:
// CODE: message" on stderr with exit status 1, other errors as timeoutOr does.
func remoteResult(env *cliEnv, err error, timeout time.Duration) error {
	var re *mxp.RemoteError
	switch {
	case errors.As(err, &re):
		fmt.Fprintf(env.Stderr, "error: %s: %s\n", string(re.Code), re.Message)
		return exitError{1}
	case err != nil:
		return timeoutOr(err, timeout)
	}
	return nil
}

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
		tf   targetFlags
		data string
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
			tf.register(fs, "how long the command may take, from its first packet (handshake, lookup and call)")
			fs.StringVar(&data, "data", "", "the Call's data, sent as is")
		},
		Run: func(ctx context.Context, env *cliEnv, args []string) error {
			if len(args) > 0 {
				return usagef("unexpected argument %q", args[0])
			}
			// --timeout bounds the whole command, from the handshake's first packet.
			deadline := time.Now().Add(tf.timeout)
			cctx, cancel := context.WithDeadline(ctx, deadline)
			defer cancel()
			cl, target, err := tf.open(cctx)
			if err != nil {
				return err
			}
			defer cl.Close()
			out, err := cl.CallAgent(cctx, target, []byte(data), time.Until(deadline))
			if re := (*mxp.RemoteError)(nil); errors.As(err, &re) && strings.HasSuffix(re.Message, "only streams") {
				re.Message += fmt.Sprintf(" (try: %s stream --to %s%s)", invokedAs(), tf.to, dataDirFlag(tf.dataDir))
			}
			if err != nil {
				return remoteResult(env, err, tf.timeout)
			}
			fmt.Fprintf(env.Stdout, "%s\n", out)
			return nil
		},
	})
}
