package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/mxp-mesh/mesh/pkg/mxp/transport/netem"
)

func init() {
	register(&command{
		Name:  "relay",
		Short: "a UDP relay that damages traffic on purpose (loss, dup, reorder, delay)",
		Usage: "--listen ADDR --to ADDR [--loss P] [--dup P] [--reorder P] [--delay D] [--jitter D]",
		Long: `relay forwards UDP datagrams from clients of --listen to --to and back, dropping,
duplicating, reordering and delaying them as asked. Use it to see how agents behave on a
bad network: point the client at --listen instead of the edge.

Examples:
  mxp relay --listen 127.0.0.1:9001 --to 127.0.0.1:9000 --loss 0.1 --delay 2ms --jitter 2ms
  mxp call --edge 127.0.0.1:9001 --to echo --data hello      (through the relay)`,
		Flags: func(fs *flag.FlagSet) {
			fs.String("listen", "127.0.0.1:9001", "UDP address clients send to")
			fs.String("to", "", "upstream UDP address; required")
			fs.Float64("loss", 0, "probability a packet is dropped (0..1)")
			fs.Float64("dup", 0, "probability a packet is duplicated (0..1)")
			fs.Float64("reorder", 0, "probability a packet is held back behind later ones (0..1)")
			fs.Duration("delay", 0, "one-way delay added to every packet")
			fs.Duration("jitter", 0, "the delay varies uniformly by ± this")
		},
		Run: func(ctx context.Context, env *cliEnv, args []string) error {
			if len(args) > 0 {
				return usagef("relay takes no arguments")
			}
			to := flagString(env, "to")
			if to == "" {
				return usagef("--to is required")
			}
			cfg := netem.Config{
				Loss: flagValue[float64](env, "loss"), Dup: flagValue[float64](env, "dup"),
				Reorder: flagValue[float64](env, "reorder"),
				Delay:   flagValue[time.Duration](env, "delay"), Jitter: flagValue[time.Duration](env, "jitter"),
			}
			if err := cfg.Validate(); err != nil {
				return usagef("%v", err)
			}
			r, err := netem.New(flagString(env, "listen"), to, cfg)
			if err != nil {
				return err
			}
			defer r.Close()
			fmt.Fprintf(env.Stdout, "relaying %s -> %s\n", r.Addr(), to)
			<-ctx.Done()
			s := r.Stats()
			fmt.Fprintf(env.Stdout, "received %d forwarded %d dropped %d duplicated %d reordered %d\n",
				s.Received, s.Forwarded, s.Dropped, s.Duplicated, s.Reordered)
			return nil
		},
	})
}
