package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sync"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

func init() {
	register(&command{
		Name:  "echo-server",
		Short: "answer every Call with a Response carrying the same id and payload",
		Usage: "--listen ADDR --key FILE",
		Long: `echo-server accepts secure MXP connections and echoes each Call. It prints its public
key and address on start (clients pass the key to ping --server-pubkey). It runs until
interrupted.`,
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
			l, err := mxp.Listen(ctx, flagString(env, "listen"), mxp.Options{PrivateKey: k})
			if err != nil {
				return err
			}
			defer l.Close()
			fmt.Fprintf(env.Stdout, "public key %s\nlistening on %s\n", l.PublicKey(), l.Addr())
			return serveEcho(ctx, l)
		},
	})
}

// serveEcho accepts connections until ctx ends and echoes Calls on each.
func serveEcho(ctx context.Context, l *mxp.Listener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := l.Accept(ctx)
		if err != nil {
			if errors.Is(err, context.Canceled) || ctx.Err() != nil {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			_ = c.Serve(ctx, mxp.Echo)
		}()
	}
}
