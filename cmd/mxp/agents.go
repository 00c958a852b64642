package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

func init() {
	var (
		cf      connFlags
		caps    stringsFlag
		name    string
		prefix  string
		asJSON  bool
		limit   int
		timeout time.Duration
	)
	register(&command{
		Name:  "agents",
		Short: "list the agents registered in the mesh",
		Usage: "[--capability C ...] [--name N] [--name-prefix P] [--json]",
		Long: `agents asks the registry (through the edge) for the agents that have every given
capability, and prints them as a table, or as a JSON array with --json.

Examples:
  mxp agents
  mxp agents --capability echo
  mxp agents --json | jq '.[].id'`,
		Flags: func(fs *flag.FlagSet) {
			cf.register(fs)
			caps = nil
			fs.Var(&caps, "capability", "only agents with this capability (repeatable)")
			fs.StringVar(&name, "name", "", "only agents with exactly this name")
			fs.StringVar(&prefix, "name-prefix", "", "only agents whose name starts with this")
			fs.BoolVar(&asJSON, "json", false, "print a JSON array")
			fs.IntVar(&limit, "limit", 0, "at most this many agents (0: the registry's default)")
			fs.DurationVar(&timeout, "timeout", 10*time.Second, "how long the command may take, from its first packet")
		},
		Run: func(ctx context.Context, env *cliEnv, args []string) error {
			if len(args) > 0 {
				return usagef("unexpected argument %q", args[0])
			}
			// --timeout bounds the whole command, from the handshake's first packet.
			qctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			cl, _, err := cf.dial(qctx)
			if err != nil {
				return timeoutOr(err, timeout)
			}
			defer cl.Close()
			resp, err := cl.Discover(qctx, mxp.DiscoverRequest{Capabilities: caps, Name: name, NamePrefix: prefix, Limit: limit})
			if err != nil {
				return timeoutOr(err, timeout)
			}
			if asJSON {
				enc := json.NewEncoder(env.Stdout)
				enc.SetIndent("", "  ")
				if resp.Agents == nil {
					resp.Agents = []mxp.AgentRecord{}
				}
				return enc.Encode(resp.Agents)
			}
			printAgents(env, resp.Agents)
			return nil
		},
	})
}

func printAgents(env *cliEnv, agents []mxp.AgentRecord) {
	if len(agents) == 0 {
		fmt.Fprintln(env.Stdout, "no agents")
		return
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSTATUS\tCAPABILITIES\tLAST HEARTBEAT")
	for _, a := range agents {
		last := "-"
		if !a.LastHeartbeat.IsZero() {
			last = time.Since(a.LastHeartbeat).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.ID, a.Name, a.Status, strings.Join(a.Capabilities, ","), last)
	}
	tw.Flush()
}
