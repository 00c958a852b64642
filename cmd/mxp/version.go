package main

import (
	"context"
	"fmt"
	"runtime"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

func init() {
	register(&command{
		Name:  "version",
		Short: "print the build, protocol and Go versions",
		Long: `version prints the CLI's build version, the MXP protocol version it speaks and the Go
toolchain it was built with. mxp --version is the same.

Examples:
  mxp version
  mxp --version`,
		Run: func(_ context.Context, env *cliEnv, args []string) error {
			if len(args) > 0 {
				return usagef("version takes no arguments")
			}
			fmt.Fprintf(env.Stdout, "mxp %s (protocol %s, %s %s/%s)\n",
				mxp.Version, mxp.ProtocolVersion, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	})
}
