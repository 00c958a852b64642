// Command mxp is the MXP mesh command line: it runs the mesh (`mxp dev`) and talks to it
// (frames, keys, calls, benchmarks). Run `mxp --help` for the list of commands.
//
// Each subcommand lives in its own file and registers itself with register in an init
// function; main only wires signals and streams.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := execute(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
