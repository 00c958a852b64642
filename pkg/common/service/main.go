package service

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"github.com/mxp-mesh/mesh/pkg/common/config"
	"github.com/mxp-mesh/mesh/pkg/common/lifecycle"
)

// Program describes one service binary (services/<name>/cmd/mxp-<name>): how its config
// loads and how the service is built on the shared Base. Run does the rest the same way for
// every service: flags and --help listing every config key, the layered config, the Base
// (logs, traces, metrics, health, bus, HTTP), and the lifecycle runner, which owns SIGINT
// and SIGTERM (the first drains gracefully, a second forces).
//
// A main is then one line: os.Exit(program.Run(context.Background(), os.Args[1:],
// os.Environ(), os.Stderr)). The context must not be tied to signals: the runner listens
// for them itself, and a context cancelled by the same signal would count as a second one.
type Program[C any] struct {
	// Name is the service name: the binary is mxp-<Name>, the environment prefix
	// MXP_<NAME>_.
	Name string
	// Defaults returns the default config (the first layer). Ignored when Loader is set.
	Defaults func() C
	// Loader, when set, builds the config loader (a service with its own layers on top of
	// config.Loader). It must use args, env and fs.
	Loader func(args, env []string, fs *flag.FlagSet) *config.Loader[C]
	// UsageNote is printed at the end of --help.
	UsageNote string
	// Base returns the Base settings for a loaded config; Service and LogWriter are filled
	// in by Run.
	Base func(cfg *C) BaseConfig
	// Start builds the service on the Base and returns what the runner runs. It may call
	// WatchConfig for hot reload and should log one line saying what it started.
	Start func(ctx context.Context, s *Setup[C]) ([]lifecycle.Service, error)
}

// Setup is what Program.Start builds a service from.
type Setup[C any] struct {
	Base   *Base
	Loader *config.Loader[C]
	Config C
	Env    []string // the process environment, as os.Environ gives it
}

// Run runs the program with args (without the program name) and the environment env, and
// returns the process exit status: 0 after a clean shutdown (or --help), 2 for a bad
// command line or config, 1 for a failure while starting or running.
func (p Program[C]) Run(ctx context.Context, args, env []string, stderr io.Writer) int {
	binary := "mxp-" + p.Name
	fs := flag.NewFlagSet(binary, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { p.usage(stderr, fs) }
	var loader *config.Loader[C]
	if p.Loader != nil {
		loader = p.Loader(args, env, fs)
	} else {
		loader = &config.Loader[C]{Service: p.Name, Defaults: p.Defaults, Args: args, Env: env, FlagSet: fs}
	}
	cfg, err := loader.Load()
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", binary, err)
		return 2
	}
	bc := p.Base(&cfg)
	bc.Service, bc.LogWriter = p.Name, stderr
	base, err := NewBase(ctx, bc)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", binary, err)
		return 1
	}
	svcs, err := p.Start(ctx, &Setup[C]{Base: base, Loader: loader, Config: cfg, Env: env})
	if err != nil {
		base.Logger.Error(p.Name+" failed to start", "err", err)
		base.close(ctx)
		return 1
	}
	runner, err := base.Runner(svcs...)
	if err != nil {
		base.Logger.Error("start failed", "err", err)
		base.close(ctx)
		return 1
	}
	if err := runner.Run(ctx); err != nil {
		base.Logger.Error("stopped with error", "err", err)
		return 1
	}
	return 0
}

// Main runs the program as the process and exits with its status.
func (p Program[C]) Main() {
	SetProcessGC()
	os.Exit(p.Run(context.Background(), os.Args[1:], os.Environ(), os.Stderr))
}

// DefaultGCPercent is the GOGC a mesh process runs with unless the GOGC environment
// variable says otherwise. Mesh services keep little live heap (a few MiB) and allocate
// per message, so Go's default of 100 starts a collection every few hundred milliseconds
// under load; 400 trades a few MiB of heap for fewer collections, which keeps the edge's
// tail latency under steady load lower. GOMEMLIMIT, when set, still bounds the heap.
const DefaultGCPercent = 400

// SetProcessGC applies DefaultGCPercent when GOGC is not set. Only mains call it: it is a
// process-wide setting.
func SetProcessGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(DefaultGCPercent)
	}
}

func (p Program[C]) usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: mxp-%s [flags]\n\nflags:\n", p.Name)
	fs.PrintDefaults()
	keys := config.Keys[C](p.Name)
	keyWidth, envWidth := 0, 0
	for _, k := range keys {
		keyWidth, envWidth = max(keyWidth, len(k.Key)), max(envWidth, len(k.Env))
	}
	fmt.Fprintln(w, "\nconfig keys (YAML key, environment variable, live = reloaded without restart):")
	for _, k := range keys {
		live := ""
		if k.Live {
			live = "live"
		}
		fmt.Fprintf(w, "  %-*s  %-*s  %s\n", keyWidth, k.Key, envWidth, k.Env, live)
	}
	if p.UsageNote != "" {
		fmt.Fprintf(w, "\n%s\n", p.UsageNote)
	}
}

// close releases what NewBase opened when the service never ran.
func (b *Base) close(ctx context.Context) {
	b.Conn.Close()
	if b.Bus != nil {
		b.Bus.Close()
	}
	if b.stopTracing != nil {
		_ = b.stopTracing(ctx)
	}
}
