package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

func init() {
	register(&command{
		Name:  "echo-server",
		Short: "answer every Call with a Response carrying the same id and payload",
		Usage: "--listen ADDR --key FILE",
		Long: `echo-server accepts secure MXP connections and echoes each Call. It prints its public
key and address on start (clients pass the key to ping --server-pubkey). It runs until
interrupted. It is the peer of mxp ping (a bare MXP server, not a mesh: a mesh's edge routes
Calls to agents, use mxp call or mxp bench there).

Examples:
  mxp keygen --out server.key
  mxp echo-server --listen 127.0.0.1:9300 --key server.key
  mxp ping --addr 127.0.0.1:9300 --server-pubkey <the public key it printed>`,
		Flags: func(fs *flag.FlagSet) {
			fs.String("listen", "127.0.0.1:9000", "UDP address to listen on")
			fs.String("key", "", "private key file (from mxp keygen --out); required")
		},
		Run: func(ctx context.Context, env *cliEnv, args []string) error {
			if len(args) > 0 {
				return usagef("echo-server takes no arguments")
			}
			path := flagString(env, "key")
			if path == "" {
				return usagef("--key is required")
			}
			k, err := mxp.LoadPrivateKey(path)
			if err != nil {
				return err
			}
			// The listener answers on the goroutine that reads its socket (Options.Serve):
			// no goroutine per client and no hand-off per Call.
			l, err := mxp.Listen(ctx, flagString(env, "listen"), mxp.Options{PrivateKey: k, Serve: mxp.Echo})
			if err != nil {
				return err
			}
			defer l.Close()
			fmt.Fprintf(env.Stdout, "public key %s\nlistening on %s\n", l.PublicKey(), l.Addr())
			<-ctx.Done()
			return nil
		},
	})
}
