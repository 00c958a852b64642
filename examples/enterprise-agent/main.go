// Command enterprise-agent is an agent dressed for production: configuration from a YAML
// file, the environment and flags, hot-reloaded on change or SIGHUP; per-caller rate
// limits; Prometheus metrics and health endpoints; graceful shutdown on SIGTERM; and a
// checkpoint of its state and conversation memory so a restart carries on. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/mxp-mesh/mesh/pkg/common/config"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	loader := &config.Loader[Config]{Service: "enterprise", Defaults: Defaults, Args: os.Args[1:]}
	app, err := NewApp(loader, log)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "enterprise-agent:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "enterprise-agent:", err)
		os.Exit(1)
	}
}
