package service

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"

	"go.opentelemetry.io/otel/trace"

	"github.com/mxp-mesh/mesh/pkg/common/config"
	"github.com/mxp-mesh/mesh/pkg/common/lifecycle"
	mlog "github.com/mxp-mesh/mesh/pkg/common/log"
)

// Def describes one service of the mesh to the module runner: its name, its config, how
// it runs alone (its binary's process settings) and how it is built on its Base. Every
// service package exports one, made into a Module by Define; a binary runs it alone
// (Module.Main) and a Process (mxp dev) runs a list of them on one bus and one HTTP
// server. Both build the service through the same code (New on a Setup).
type Def[C any] struct {
	// Name is the service name: the binary mxp-<Name>, the environment prefix
	// MXP_<NAME>_, the section of a shared config file, a --target name.
	Name    string
	Version string
	// Defaults returns the default config (the first layer).
	Defaults func() C
	// Env, when set, rewrites the environment before the config loads (old variable
	// names kept as aliases). The service gets the rewritten one in Setup.Env.
	Env func(env []string) []string
	// UsageNote is printed at the end of the binary's --help.
	UsageNote string
	// Base returns the process settings of the service running alone (its own bus URL or
	// embedded server, HTTP address, shutdown timeout) from its config. In a Process the
	// shared config gives them instead.
	Base func(cfg *C) BaseConfig
	// Level is the config's log level (live: a reload changes it).
	Level func(cfg *C) string
	// Requires names the modules that must run in the same process when this one does
	// (a target runs its transitive requirements). The bus, HTTP server, logs and
	// tracing are the process's and need not be named.
	Requires []string
	// ServiceDigest says the service reports its own config digest and accepted reloads
	// (Setup.Base.SetDigest, Metrics.ObserveReload: the inference service's digest
	// includes the providers' environment); the runner then counts only rejected
	// reloads and reloads with no live change. Otherwise the runner keeps both.
	ServiceDigest bool
	// New builds the service on s with no I/O beyond what its constructor documents; the
	// runner runs it. It may add OnChange hooks to s.Watcher for hot reload and should
	// log one line saying what it built.
	New func(s *Setup[C]) (lifecycle.Service, error)
}

// Setup is what Def.New builds a service from.
type Setup[C any] struct {
	Base   *Base
	Config C
	Env    []string // the environment (after Def.Env), as os.Environ gives it
	Loader *config.Loader[C]
	// Watcher reloads Config from the same layers on file change and SIGHUP; the runner
	// runs it and keeps the digest, level and reload metrics.
	Watcher *config.Watcher[C]
}

// Module is a Def with its config type erased, so that one list can hold every service.
type Module struct {
	Name     string
	Requires []string
	run      func(ctx context.Context, args, env []string, stderr io.Writer) int
	build    func(ctx context.Context, in moduleInput) (*built, error)
}

// moduleInput is what a Process gives one module.
type moduleInput struct {
	name             string // an Instance's name; "" for the module's own
	file             string
	env              []string
	preset, override map[string]string
	logWriter        io.Writer
	logger           *slog.Logger
	tracer           trace.Tracer
	shared           *Shared
	sharedLevel      string
}

// built is one module built inside a Process.
type built struct {
	base   *Base
	svc    lifecycle.Service
	reload func() error
}

// Define erases d's config type.
func Define[C any](d Def[C]) Module {
	return Module{
		Name:     d.Name,
		Requires: d.Requires,
		run:      d.run,
		build:    d.buildShared,
	}
}

// Main runs the module alone as the process (its binary) and exits with its status.
func (m Module) Main() {
	SetProcessGC()
	os.Exit(m.Run(context.Background(), os.Args[1:], os.Environ(), os.Stderr))
}

// Run runs the module alone with args (without the program name) and the environment
// env, and returns the exit status: 0 after a clean shutdown (or --help), 2 for a bad
// command line or config, 1 for a failure while starting or running. The context must
// not be tied to signals: the runner listens for them itself.
func (m Module) Run(ctx context.Context, args, env []string, stderr io.Writer) int {
	return m.run(ctx, args, env, stderr)
}

func (d Def[C]) env(env []string) []string {
	if d.Env != nil {
		return d.Env(env)
	}
	return env
}

// run is Module.Run: the service's own flags and config file (its own keys, or the file
// of a process of several services, from which it takes its section), its own Base.
func (d Def[C]) run(ctx context.Context, args, env []string, stderr io.Writer) int {
	binary := "mxp-" + d.Name
	fs := flag.NewFlagSet(binary, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { d.usage(stderr, fs) }
	env = d.env(env)
	loader := &config.Loader[C]{Service: d.Name, Defaults: d.Defaults, Args: args, Env: env, FlagSet: fs,
		SectionIfPresent: d.Name}
	cfg, err := loader.Load()
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", binary, err)
		return 2
	}
	bc := d.Base(&cfg)
	bc.Service, bc.LogWriter = d.Name, stderr
	if bc.Version == "" {
		bc.Version = d.Version
	}
	base, err := NewBase(ctx, bc)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", binary, err)
		return 1
	}
	svc, _, err := d.build(base, loader, cfg, env)
	if err != nil {
		base.Logger.Error(d.Name+" failed to start", "err", err)
		base.close(ctx)
		return 1
	}
	runner, err := base.Runner(svc)
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

// build is the one path from a loaded config to a service, alone or in a Process: the
// hot-reload watcher (digest, level, reload metrics), then Def.New.
func (d Def[C]) build(base *Base, loader *config.Loader[C], cfg C, env []string) (lifecycle.Service, *config.Watcher[C], error) {
	var w *config.Watcher[C]
	if d.ServiceDigest {
		w = config.NewWatcher(loader, cfg, base.Logger)
		w.OnResult(func(res config.ReloadResult, err error) {
			if err != nil || len(res.Changed) == 0 {
				base.Metrics.ObserveReload(err == nil)
			}
		})
		w.OnChange(func(_, c *C) {
			if d.Level == nil {
				return
			}
			if lv, err := mlog.ParseLevel(d.Level(c)); err == nil {
				base.Level.Set(lv)
			}
		})
		base.watcherRunner = append(base.watcherRunner, lifecycle.Func{N: "config-watcher", F: w.Run})
	} else {
		w = WatchConfig(base, loader, cfg, d.Level, nil)
	}
	svc, err := d.New(&Setup[C]{Base: base, Config: cfg, Env: env, Loader: loader, Watcher: w})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", d.Name, err)
	}
	return svc, w, nil
}

// buildShared builds the module inside a Process: its section of the shared file, its
// environment variables and the process's presets and overrides, on the shared Base.
func (d Def[C]) buildShared(ctx context.Context, in moduleInput) (*built, error) {
	env := d.env(in.env)
	preset := in.preset
	if _, ok := preset["log_level"]; !ok && in.sharedLevel != "" && hasKey[C](d.Name, "log_level") {
		preset = maps.Clone(preset)
		if preset == nil {
			preset = map[string]string{}
		}
		preset["log_level"] = in.sharedLevel
	}
	loader := &config.Loader[C]{Service: d.Name, Defaults: d.Defaults, File: in.file, Section: d.Name, Env: env,
		Preset: preset, Override: in.override}
	cfg, err := loader.Load()
	if err != nil {
		return nil, &ConfigError{Module: d.Name, Err: err}
	}
	name := d.Name
	if in.name != "" {
		name = in.name
	}
	bc := BaseConfig{Service: name, Version: d.Version, LogWriter: in.logWriter, Logger: in.logger, Tracer: in.tracer,
		Shared: in.shared}
	if d.Level != nil {
		bc.LogLevel = d.Level(&cfg)
	}
	base, err := NewBase(ctx, bc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.Name, err)
	}
	svc, w, err := d.build(base, loader, cfg, env)
	if err != nil {
		base.close(ctx)
		return nil, err
	}
	return &built{base: base, svc: svc, reload: func() error { _, err := w.Reload(); return err }}, nil
}

// ConfigError is a module's config that did not load (a bad key, value or file): the
// program's exit status 2.
type ConfigError struct {
	Module string
	Err    error
}

func (e *ConfigError) Error() string { return e.Module + " config: " + e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

func hasKey[C any](service, key string) bool {
	return slices.ContainsFunc(config.Keys[C](service), func(k config.KeyInfo) bool { return k.Key == key })
}

func (d Def[C]) usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: mxp-%s [flags]\n\nflags:\n", d.Name)
	fs.PrintDefaults()
	fmt.Fprintln(w, "\nconfig keys (YAML key, environment variable, live = reloaded without restart):")
	printKeys(w, config.Keys[C](d.Name))
	if d.UsageNote != "" {
		fmt.Fprintf(w, "\n%s\n", d.UsageNote)
	}
}

// printKeys writes the key table of a binary's --help.
func printKeys(w io.Writer, keys []config.KeyInfo) {
	keyWidth, envWidth := 0, 0
	for _, k := range keys {
		keyWidth, envWidth = max(keyWidth, len(k.Key)), max(envWidth, len(k.Env))
	}
	for _, k := range keys {
		live := ""
		if k.Live {
			live = "live"
		}
		fmt.Fprintf(w, "  %-*s  %-*s  %s\n", keyWidth, k.Key, envWidth, k.Env, live)
	}
}
