package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/mxp-mesh/mesh/pkg/mxp/transport/netem"
)

func init() {
	register(&command{
		Name:  "udp-echo",
		Short: "a plain UDP echo server: the baseline for mxp ping against mxp echo-server",
		Usage: "--listen ADDR",
		Long: `udp-echo sends every UDP datagram back to its sender, with nothing of MXP: no
encryption, no framing, no reliability. A round trip to it is the floor that a round trip
of mxp ping to mxp echo-server is measured against (make bench does, in processes of their
own). It prints its address on start and runs until interrupted.

Examples:
  mxp udp-echo --listen 127.0.0.1:9002`,
		Flags: func(fs *flag.FlagSet) {
			fs.String("listen", "127.0.0.1:9002", "UDP address to listen on")
		},
		Run: func(ctx context.Context, env *cliEnv, args []string) error {
			if len(args) > 0 {
				return usagef("udp-echo takes no arguments")
			}
			e, err := netem.ListenUDPEcho(flagString(env, "listen"))
			if err != nil {
				return err
			}
			defer e.Close()
			fmt.Fprintf(env.Stdout, "listening on %s\n", e.Addr())
			<-ctx.Done()
			return nil
		},
	})
}
