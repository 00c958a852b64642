package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// flagString and friends read a parsed flag by name.
func flagString(env *cliEnv, name string) string { return env.Flags.Lookup(name).Value.String() }

func flagValue[T any](env *cliEnv, name string) T {
	return env.Flags.Lookup(name).Value.(flag.Getter).Get().(T)
}

func init() {
	register(&command{
		Name:  "keygen",
		Short: "generate an X25519 identity key; print its public key",
		Usage: "[--out FILE]",
		Long: `keygen writes a new private key (base64, mode 0600) to --out and prints the public
key that peers pin. Without --out the private key is printed on the first line and the
public key on the second. An existing file is never overwritten.

Examples:
  mxp keygen --out server.key      then: mxp echo-server --key server.key
  mxp keygen                       print a private and a public key`,
		Flags: func(fs *flag.FlagSet) {
			fs.String("out", "", "write the private key to this new file (mode 0600)")
		},
		Run: func(_ context.Context, env *cliEnv, args []string) error {
			if len(args) > 0 {
				return usagef("keygen takes no arguments")
			}
			k, err := mxp.GeneratePrivateKey()
			if err != nil {
				return err
			}
			if out := flagString(env, "out"); out != "" {
				if err := mxp.SavePrivateKey(out, k); err != nil {
					return err
				}
			} else {
				fmt.Fprintln(env.Stdout, k.Reveal())
			}
			fmt.Fprintln(env.Stdout, k.PublicKey().String())
			return nil
		},
	})
}
