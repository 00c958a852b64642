package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/common/config"
	"github.com/mxp-mesh/mesh/pkg/common/health"
	"github.com/mxp-mesh/mesh/pkg/common/lifecycle"
	mlog "github.com/mxp-mesh/mesh/pkg/common/log"
	"github.com/mxp-mesh/mesh/pkg/common/metrics"
	"github.com/mxp-mesh/mesh/pkg/common/tracing"
)

// ProcessName names the shared keys of a Process: their environment prefix is MXP_MESH_,
// and its logs, traces and metrics say service="mesh" where no service is meant.
const ProcessName = "mesh"

// TargetAll runs every module of the list.
const TargetAll = "all"

// ProcessConfig is what the services of one Process share: the top-level keys of its
// config file (beside one section per service), MXP_MESH_* in the environment. A service's
// own bus, HTTP and shutdown keys (nats, embedded_nats, http, http_limits,
// shutdown_timeout) apply when it runs alone and are not read in a Process.
type ProcessConfig struct {
	// Bus is the NATS URL, or the embedded server when the URL is empty (the default).
	Bus bus.Config `yaml:"bus"`
	// HTTP serves /metrics, /livez, /readyz, /debug/pprof and every service's routes.
	// Default 127.0.0.1:8080; an empty address turns it off.
	HTTP metrics.ServerConfig `yaml:"http"`
	// Log sets the level every service starts from; a service's own log_level (in its
	// section or environment) wins, and reloads live.
	Log LogConfig `yaml:"log"`
	// ShutdownTimeout bounds the graceful shutdown of the whole process. Default 20s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// LogConfig is the shared log settings.
type LogConfig struct {
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level"`
}

// DefaultProcessConfig returns the shared defaults.
func DefaultProcessConfig() ProcessConfig {
	return ProcessConfig{
		HTTP:            metrics.ServerConfig{Addr: "127.0.0.1:8080", Pprof: true},
		Log:             LogConfig{Level: "info"},
		ShutdownTimeout: 20 * time.Second,
	}
}

// Validate implements config.Validator.
func (c ProcessConfig) Validate() error {
	var errs []error
	if _, err := mlog.ParseLevel(c.Log.Level); err != nil {
		errs = append(errs, config.FieldError("log.level", "%v", err))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, config.FieldError("shutdown_timeout", "must be positive, got %v", c.ShutdownTimeout))
	}
	return errors.Join(errs...)
}

// ProcessOptions configure StartProcess.
type ProcessOptions struct {
	// Modules is the list (every service the program knows), in start order.
	Modules []Module
	// Targets names the modules to run, or TargetAll; empty means TargetAll. Each runs
	// with its transitive Requires.
	Targets []string
	// ConfigFile is the shared YAML file: the ProcessConfig keys at the top level and
	// one section per module (edge:, registry:, ...). Empty: MXP_MESH_CONFIG, or none.
	ConfigFile string
	// Env is the environment, as os.Environ gives it; nil means os.Environ().
	Env []string
	// LogWriter receives every service's JSON log lines; nil means os.Stderr.
	LogWriter io.Writer
	// Logger and Tracer, when set, are every service's logger and tracer as given (tests
	// that collect lines or record spans); see BaseConfig.
	Logger *slog.Logger
	Tracer trace.Tracer
	// SpanExporter, when set (and Tracer is not), receives the process's spans instead of
	// the exporter the OTEL_* variables name (tests).
	SpanExporter sdktrace.SpanExporter
	// Version is the process's service.version in its traces' resource.
	Version string
	// Preset and Override lay values (key → value, as in the environment) over a
	// module's defaults (under its file section) and over its environment (as flags do),
	// by module name; ProcessName's apply to the shared keys. They are a program's own
	// defaults and flags (mxp dev's --edge-addr, --http-addr, ...).
	Preset, Override map[string]map[string]string
	// Instances are more instances of modules of the list beside the targets (several
	// edges on one bus), built after them in this order.
	Instances []Instance
}

// Instance is one more instance of a module in a Process, built by the module's own code
// (Def.New on a Setup) as its target is: its section of the file and its environment
// variables, the process's presets and overrides for the module, then Preset and
// Override laid over those. It runs under Name: its bus connection (mxp-<Name>), logs,
// tracer scope and bus check (bus/<Name>) name it, and its config reloads with the
// others'. A service's own health checks must be named by Deps.Metrics.Service() (the
// edge's are) or an instance replaces its module's on the shared checker. It
// mounts no HTTP routes (they are its module's), and its metrics go to a registry of its
// own, not the process's /metrics, where its series would collide with its module's.
type Instance struct {
	Module, Name     string
	Preset, Override map[string]string
}

// Process runs several modules in one process: one bus (embedded or external), one HTTP
// server, one metrics registry and health checker, one tracer provider (resource
// service.name "mxp-mesh", installed as the global one once), and per module its own bus
// connection, logger (level), tracer (tracing.ModuleTracer: scope mxp-<name>, attribute
// mxp.service=<name>), config section and hot reload, built by the same code as the
// module's binary (Def.New on a Setup). Build it with StartProcess, then Run.
type Process struct {
	Config  ProcessConfig
	Logger  *slog.Logger
	Bus     *bus.Bus
	Metrics *metrics.Registry
	Health  *health.Checker
	HTTP    *metrics.Server // nil when http.addr is empty

	targets     []string
	order       []string // targets, then instances: the run order
	mods        map[string]*built
	digest      string
	stopTracing func(context.Context) error // flushes the one provider's spans
}

// ResolveTargets returns the modules targets name with their transitive Requires, in the
// list's order. TargetAll (or no target) is every module.
func ResolveTargets(modules []Module, targets []string) ([]string, error) {
	byName := make(map[string]Module, len(modules))
	var names []string
	for _, m := range modules {
		byName[m.Name] = m
		names = append(names, m.Name)
	}
	want := map[string]bool{}
	var add func(name, from string) error
	add = func(name, from string) error {
		m, ok := byName[name]
		if !ok {
			if from != "" {
				return fmt.Errorf("module %s requires unknown module %q", from, name)
			}
			return fmt.Errorf("unknown target %q (known: %s, %s)", name, strings.Join(names, ", "), TargetAll)
		}
		if want[name] {
			return nil
		}
		want[name] = true
		for _, r := range m.Requires {
			if err := add(r, name); err != nil {
				return err
			}
		}
		return nil
	}
	if len(targets) == 0 {
		targets = []string{TargetAll}
	}
	for _, t := range targets {
		t = strings.TrimSpace(t)
		if t == TargetAll {
			for _, n := range names {
				want[n] = true
			}
			continue
		}
		if err := add(t, ""); err != nil {
			return nil, err
		}
	}
	var out []string
	for _, n := range names {
		if want[n] {
			out = append(out, n)
		}
	}
	return out, nil
}

// StartProcess loads the shared config and each target's section, starts the bus,
// builds every target on it and binds the HTTP server (so its address is known); the
// services serve from Run. A bad target or config is a *ConfigError (or, for the shared
// keys, a config error naming the key); whatever was started is released on error.
func StartProcess(ctx context.Context, o ProcessOptions) (*Process, error) {
	targets, err := ResolveTargets(o.Modules, o.Targets)
	if err != nil {
		return nil, &ConfigError{Module: ProcessName, Err: err}
	}
	env := o.Env
	if env == nil {
		env = os.Environ()
	}
	writer := o.LogWriter
	if writer == nil {
		writer = os.Stderr
	}
	var sections []string
	for _, m := range o.Modules {
		sections = append(sections, m.Name)
	}
	shared := &config.Loader[ProcessConfig]{Service: ProcessName, Defaults: DefaultProcessConfig, File: o.ConfigFile,
		Env: env, Skip: sections, Preset: o.Preset[ProcessName], Override: o.Override[ProcessName]}
	pcfg, err := shared.Load()
	if err != nil {
		return nil, &ConfigError{Module: ProcessName, Err: err}
	}
	level := new(slog.LevelVar)
	lv, _ := mlog.ParseLevel(pcfg.Log.Level) // validated
	level.Set(lv)
	p := &Process{Config: pcfg, targets: targets, mods: map[string]*built{}, digest: config.Digest(pcfg)}
	p.Logger = o.Logger
	if p.Logger == nil {
		p.Logger = mlog.New(mlog.Options{Service: ProcessName, Level: level, Writer: writer})
	}
	p.Metrics = metrics.NewRegistry(ProcessName)
	p.Metrics.SetConfigDigest(p.digest)
	p.Health = health.NewChecker(func() string { return p.digest })
	if pcfg.HTTP.Addr != "" {
		p.HTTP = metrics.NewServer(pcfg.HTTP, p.Metrics, p.Health)
	}
	p.stopTracing = func(context.Context) error { return nil }
	var tp trace.TracerProvider
	if o.Tracer == nil {
		if tp, p.stopTracing, err = tracing.NewProvider(ctx, "mxp-"+ProcessName, o.Version, o.SpanExporter); err != nil {
			return nil, fmt.Errorf("tracing: %w", err)
		}
		tracing.Install(tp)
	}
	if p.Bus, err = bus.Connect(pcfg.Bus, "mxp-"+ProcessName, p.Logger); err != nil {
		_ = p.stopTracing(ctx)
		return nil, err
	}
	sh := &Shared{Bus: p.Bus, Metrics: p.Metrics, Health: p.Health, HTTP: p.HTTP}
	for _, m := range o.Modules {
		if !slices.Contains(targets, m.Name) {
			continue
		}
		tracer := o.Tracer
		if tracer == nil {
			tracer = tracing.ModuleTracer(tp, m.Name)
		}
		b, err := m.build(ctx, moduleInput{file: shared.FilePath(), env: env, preset: o.Preset[m.Name],
			override: o.Override[m.Name], logWriter: writer, logger: o.Logger, tracer: tracer, shared: sh,
			sharedLevel: pcfg.Log.Level})
		if err != nil {
			p.abort(ctx)
			return nil, err
		}
		p.mods[m.Name] = b
		p.order = append(p.order, m.Name)
	}
	for _, in := range o.Instances {
		i := slices.IndexFunc(o.Modules, func(m Module) bool { return m.Name == in.Module })
		if i < 0 || in.Name == "" || slices.ContainsFunc(o.Modules, func(m Module) bool { return m.Name == in.Name }) ||
			p.mods[in.Name] != nil {
			p.abort(ctx)
			return nil, &ConfigError{Module: ProcessName, Err: fmt.Errorf(
				"instance %q of module %q: the module must be in the list and the name new", in.Name, in.Module)}
		}
		own := *sh
		own.Metrics, own.HTTP = metrics.NewRegistry(in.Name), nil
		tracer := o.Tracer
		if tracer == nil {
			tracer = tracing.ModuleTracer(tp, in.Name)
		}
		b, err := o.Modules[i].build(ctx, moduleInput{name: in.Name, file: shared.FilePath(), env: env,
			preset: layer(o.Preset[in.Module], in.Preset), override: layer(o.Override[in.Module], in.Override),
			logWriter: writer, logger: o.Logger, tracer: tracer, shared: &own, sharedLevel: pcfg.Log.Level})
		if err != nil {
			p.abort(ctx)
			return nil, err
		}
		p.mods[in.Name] = b
		p.order = append(p.order, in.Name)
	}
	if p.HTTP != nil {
		if err := p.HTTP.Start(); err != nil {
			p.abort(ctx)
			return nil, fmt.Errorf("http %s: %w", pcfg.HTTP.Addr, err)
		}
	}
	p.Logger.Info("mesh process built", "targets", targets, "config_file", shared.FilePath(), "http", p.HTTPAddr())
	return p, nil
}

// Targets are the modules the process runs, in start order.
func (p *Process) Targets() []string { return p.targets }

// Service is the service built for module or instance name (nil when it is neither a
// target nor an Instance); callers that know the module's type assert it (*edge.Edge).
func (p *Process) Service(name string) lifecycle.Service {
	if b := p.mods[name]; b != nil {
		return b.svc
	}
	return nil
}

// BusConn is module or instance name's own bus connection (nil when it is neither); a
// test closes it to take that service off the bus.
func (p *Process) BusConn(name string) *nats.Conn {
	if b := p.mods[name]; b != nil {
		return b.base.Conn
	}
	return nil
}

// HTTPAddr is the HTTP server's bound address ("" when it is off).
func (p *Process) HTTPAddr() string {
	if p.HTTP == nil {
		return ""
	}
	return p.HTTP.Addr()
}

// Reload reloads every module's config now, as SIGHUP and a change of the file do.
func (p *Process) Reload() error {
	var errs []error
	for _, name := range p.order {
		if err := p.mods[name].reload(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// Run runs every module and its config watcher until ctx ends or SIGINT/SIGTERM (the
// lifecycle runner: readiness false, intake stops, in-flight work drains), then drains
// each module's bus connection, stops HTTP, flushes the traces of every module once (the
// one provider's shutdown) and closes the bus. The
// context must not be tied to signals: the runner listens for them itself.
func (p *Process) Run(ctx context.Context) error {
	r := &lifecycle.Runner{Logger: p.Logger, Health: p.Health, ShutdownTimeout: p.Config.ShutdownTimeout}
	for _, name := range p.order {
		b := p.mods[name]
		r.Add(b.svc)
		r.Add(b.base.watcherRunner...)
	}
	for _, name := range p.order {
		b := p.mods[name].base
		r.OnStop("bus/"+name, b.drainBus)
	}
	if p.HTTP != nil {
		r.OnStop("http", p.HTTP.Shutdown)
	}
	r.OnStop("tracing", p.stopTracing)
	r.OnStop("bus", func(context.Context) error { return p.Bus.Close() })
	return r.Run(ctx)
}

// abort releases a process that will not Run: each built service runs on a done context
// (so it frees what New took: sockets, stores), then the modules' Bases, HTTP and the bus.
func (p *Process) abort(ctx context.Context) {
	done, cancel := context.WithCancel(context.WithoutCancel(ctx))
	cancel()
	for _, b := range p.mods {
		_ = b.svc.Run(done)
		b.base.close(ctx)
	}
	if p.HTTP != nil {
		_ = p.HTTP.Shutdown(ctx)
	}
	_ = p.stopTracing(ctx)
	_ = p.Bus.Close()
}

// layer returns over laid on base (base itself when over is empty).
func layer(base, over map[string]string) map[string]string {
	if len(over) == 0 {
		return base
	}
	out := maps.Clone(base)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, over)
	return out
}
