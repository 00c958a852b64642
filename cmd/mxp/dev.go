package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mxp-mesh/mesh/mesh"
	"github.com/mxp-mesh/mesh/pkg/common/health"
	mlog "github.com/mxp-mesh/mesh/pkg/common/log"
	"github.com/mxp-mesh/mesh/pkg/common/service"
)

func init() {
	var (
		edgeAddr, compatAddr, httpAddr, natsAddr, dataDir, logLevel, target, configFile string
		compatRemote                                                                    bool
	)
	register(&command{
		Name:  "dev",
		Short: "run the whole mesh in one process (embedded NATS, edge, registry, inference)",
		Usage: "",
		Long: `dev runs the services of the mesh in one process, with no flags, API keys or network:
an embedded NATS server, the edge (secure UDP transport), the registry (memory store)
and the inference service (a deterministic built-in model; real providers turn on from
OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY, OLLAMA_HOST). /metrics, /livez,
/readyz and the services' HTTP APIs (/v1/agents, the OpenAI-compatible /v1/...) are
served on --http-addr.

It runs the mesh's module list (the mesh package), the same services the mxp-<name>
binaries run alone: --target picks them (all, or a subset such as edge,registry). Each
service reads its section of the --config file (edge:, registry:, inference:; bus:,
http:, log: and shutdown_timeout at the top level) and its MXP_<SERVICE>_* variables
(MXP_MESH_* for the shared keys); the flags below win over both, and their defaults sit
under both. The file reloads on change and on SIGHUP (the keys each service reloads
live). Traces export over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set.

The edge key is created in the data directory on the first run and reused after; dev
writes edge.json there so that the client commands (mxp agent, call, agents, bench)
find the mesh with no flags. Ctrl-C stops everything gracefully.

Examples:
  mxp dev
  mxp dev --compat-addr 127.0.0.1:9001      also accept the reference SDK's plaintext frames
  mxp dev --target edge,registry            no inference service
  mxp dev --config mesh.yaml                a section per service, reloaded on change
  mxp dev --edge-addr 127.0.0.1:9100 --http-addr 127.0.0.1:8081 --data-dir /tmp/mesh`,
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&edgeAddr, "edge-addr", "127.0.0.1:9000", "UDP address of the edge's secure transport (edge.addr)")
			fs.StringVar(&compatAddr, "compat-addr", "", "UDP address of the plaintext listener for the reference SDK, off when empty (edge.compat_addr)")
			fs.BoolVar(&compatRemote, "compat-allow-remote", false, "allow the plaintext listener on a non-loopback address (edge.compat_allow_remote)")
			fs.StringVar(&httpAddr, "http-addr", "127.0.0.1:"+defaultDevHTTPPort, "HTTP address of /metrics, /livez, /readyz and the service APIs (http.addr)")
			fs.StringVar(&natsAddr, "nats-addr", defaultNATSAddr, "TCP address of the embedded NATS server (\"off\": in-process only; bus.embedded)")
			fs.StringVar(&dataDir, "data-dir", defaultDataDir, "data directory: the edge key and edge.json for the client commands")
			fs.StringVar(&logLevel, "log-level", "warn", "debug, info, warn or error, JSON logs on stderr (log.level)")
			fs.StringVar(&target, "target", service.TargetAll, "services to run: all, or a comma-separated subset of "+strings.Join(moduleNames(), ","))
			fs.StringVar(&configFile, "config", "", "YAML config file: a section per service (also MXP_MESH_CONFIG)")
		},
		Run: func(ctx context.Context, env *cliEnv, args []string) error {
			if len(args) > 0 {
				return usagef("dev takes no arguments")
			}
			set := map[string]bool{}
			env.Flags.Visit(func(f *flag.Flag) { set[f.Name] = true })
			return runDev(ctx, env, devOptions{
				EdgeAddr: edgeAddr, CompatAddr: compatAddr, CompatAllowRemote: compatRemote,
				HTTPAddr: httpAddr, NATSAddr: natsAddr, DataDir: dataDir, LogLevel: logLevel,
				Targets: strings.Split(target, ","), ConfigFile: configFile,
				set: func(name string) bool { return set[name] },
			})
		},
	})
}

// defaultDevHTTPPort is the port of mxp dev's default --http-addr (mxp infer's default too).
const defaultDevHTTPPort = "8080"

// defaultNATSAddr is where the embedded NATS server of `mxp dev` listens by default.
const defaultNATSAddr = "127.0.0.1:4222"

type devOptions struct {
	EdgeAddr, CompatAddr, HTTPAddr, NATSAddr, DataDir, LogLevel string
	CompatAllowRemote                                           bool
	// Targets are the modules to run (service.TargetAll or names); ConfigFile is the
	// shared config file ("" for none).
	Targets    []string
	ConfigFile string
	// Env is the environment the services read (nil: the process's).
	Env []string
	// set reports whether a flag was given on the command line: a given flag overrides
	// the file and the environment, a default sits under them. Nil: every option given.
	set func(flag string) bool
	// ready, when set, receives the edge info once everything serves (tests).
	ready func(EdgeInfo)
}

func moduleNames() []string {
	var out []string
	for _, m := range mesh.Modules {
		out = append(out, m.Name)
	}
	return out
}

// layers turns the dev flags into the module runner's layers: each flag is a key of a
// module's section (or of the shared keys), an override when given and a preset (under
// the file and environment) when not.
func (o devOptions) layers() (preset, override map[string]map[string]string, err error) {
	preset, override = map[string]map[string]string{}, map[string]map[string]string{}
	put := func(flagName, module, key, value string) {
		m := preset
		if o.set == nil || o.set(flagName) {
			m = override
		}
		if m[module] == nil {
			m[module] = map[string]string{}
		}
		m[module][key] = value
	}
	put("edge-addr", "edge", "addr", o.EdgeAddr)
	put("compat-addr", "edge", "compat_addr", o.CompatAddr)
	put("compat-allow-remote", "edge", "compat_allow_remote", strconv.FormatBool(o.CompatAllowRemote))
	put("data-dir", "edge", "key_file", filepath.Join(o.DataDir, edgeKeyFile))
	put("http-addr", service.ProcessName, "http.addr", o.HTTPAddr)
	put("log-level", service.ProcessName, "log.level", o.LogLevel)
	// The bus: embedded NATS, listening on loopback so other processes (a separate
	// mxp-<service>, the nats CLI) can join, or in-process only.
	if o.NATSAddr == "off" {
		put("nats-addr", service.ProcessName, "bus.embedded.dont_listen", "true")
		return preset, override, nil
	}
	host, port, err := net.SplitHostPort(o.NATSAddr)
	if err != nil {
		return nil, nil, usagef("--nats-addr: %v", err)
	}
	if _, err := strconv.Atoi(port); err != nil {
		return nil, nil, usagef("--nats-addr: port %q", port)
	}
	if o.NATSAddr == defaultNATSAddr && !tcpFree(o.NATSAddr) {
		// Another NATS owns the default port: the embedded one takes any free port (the
		// banner and edge.json name it).
		port = "0"
	}
	put("nats-addr", service.ProcessName, "bus.embedded.host", host)
	put("nats-addr", service.ProcessName, "bus.embedded.port", port)
	return preset, override, nil
}

// runDev runs the mesh's module list (mesh.Start: the targets on one bus and one HTTP
// server, each service built as its mxp-<name> binary builds it) until ctx ends, and
// writes edge.json and the banner for the client commands.
func runDev(ctx context.Context, env *cliEnv, o devOptions) error {
	service.SetProcessGC()
	if _, err := mlog.ParseLevel(o.LogLevel); err != nil {
		return usagef("--log-level: %v", err)
	}
	_, statErr := os.Stat(o.DataDir)
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	// A mesh that never served (a taken port, a bad config) leaves no directory behind
	// that it created: a mistyped --data-dir would otherwise litter an empty one. A
	// directory that was there is kept, whatever it holds.
	served := false
	if errors.Is(statErr, fs.ErrNotExist) {
		defer func() {
			if !served {
				os.RemoveAll(o.DataDir)
			}
		}()
	}
	// One mxp dev per data directory: a second one used to move NATS to a random port,
	// overwrite edge.json and delete it on exit, cutting the first mesh off its clients.
	release, err := claimDataDir(o.DataDir)
	if err != nil {
		return err
	}
	defer release()
	preset, override, err := o.layers()
	if err != nil {
		return err
	}
	m, err := mesh.Start(ctx, mesh.Options{Targets: o.Targets, ConfigFile: o.ConfigFile, Env: o.Env,
		LogWriter: env.Stderr, Preset: preset, Override: override})
	var cerr *service.ConfigError
	if errors.As(err, &cerr) {
		return usagef("%v", err)
	}
	if err != nil {
		return addrInUseHint(err)
	}

	// The runner handles SIGINT and SIGTERM itself (the first drains, a second forces). The
	// CLI's context is cancelled by the same signal, which the runner would then take for
	// a second one; so the runner gets a context that only a plain cancellation (not a
	// signal) ends.
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRun()
	go func() {
		select {
		case <-ctx.Done():
			if context.Cause(ctx) == ctx.Err() { // not a signal (that has its own cause)
				stopRun()
			}
		case <-runCtx.Done():
		}
	}()
	runErr := make(chan error, 1)
	go func() { runErr <- m.Run(runCtx) }()

	info := EdgeInfo{HTTPAddr: "http://" + dialable(m.HTTPAddr()), PID: os.Getpid(), StartedAt: time.Now().UTC()}
	if m.HTTPAddr() == "" {
		info.HTTPAddr = ""
	}
	if m.Bus.Server != nil {
		info.NATSURL = m.Bus.Server.ClientURL()
	}
	if e := m.Edge(); e != nil {
		select { // the edge binds its transports (and reads its key) in Run
		case <-e.Serving():
		case err := <-runErr:
			if err == nil {
				err = errors.New("the mesh stopped before the edge served")
			}
			return addrInUseHint(err)
		}
		addrs := e.Addrs()
		info.EdgeAddr, info.PublicKey = dialable(addrs["secure"]), e.PublicKey()
		if a := addrs["compat"]; a != "" {
			info.CompatAddr = dialable(a)
		}
		if err := writeEdgeInfo(o.DataDir, info); err != nil {
			stopRun()
			<-runErr
			return fmt.Errorf("writing %s: %w", edgeInfoFile, err)
		}
		defer removeOwnEdgeInfo(o.DataDir, info) // only if it is still the one written here
	}
	served = true
	printBanner(env, o, m.Targets(), info)
	if o.ready != nil {
		go func() {
			waitReady(runCtx, m.Health)
			if runCtx.Err() == nil {
				o.ready(info)
			}
		}()
	}
	return <-runErr
}

// addrInUseHint adds to a bind error what to do about it: the error names the address
// (mesh.Start's and the edge's listen errors do); another mxp dev on the default ports is
// the usual holder, and a second mesh needs ports of its own.
func addrInUseHint(err error) error {
	if !errors.Is(err, syscall.EADDRINUSE) {
		return err
	}
	return fmt.Errorf("%w (another mesh or program holds that address: stop it, or give this mesh other ports with "+
		"--edge-addr, --compat-addr, --http-addr and --nats-addr, 127.0.0.1:0 for any free one)", err)
}

// tcpFree reports whether addr can be listened on now.
func tcpFree(addr string) bool {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

func waitReady(ctx context.Context, c *health.Checker) {
	for ctx.Err() == nil && !c.Ready(ctx).Ready {
		time.Sleep(10 * time.Millisecond)
	}
}

func printBanner(env *cliEnv, o devOptions, targets []string, info EdgeInfo) {
	w := env.Stdout
	fmt.Fprintf(w, "MXP mesh running (mxp dev)\n")
	if all := moduleNames(); len(targets) < len(all) {
		fmt.Fprintf(w, "  services            %s (--target)\n", strings.Join(targets, ", "))
	}
	if info.EdgeAddr != "" {
		fmt.Fprintf(w, "  edge (secure UDP)   %s\n", info.EdgeAddr)
		fmt.Fprintf(w, "  edge public key     %s\n", info.PublicKey)
	}
	if info.CompatAddr != "" {
		fmt.Fprintf(w, "  plaintext listener  %s (reference SDK, unencrypted)\n", info.CompatAddr)
	}
	if info.HTTPAddr != "" {
		fmt.Fprintf(w, "  HTTP                %s  (/metrics /livez /readyz /v1/agents /v1/chat/completions)\n", info.HTTPAddr)
	}
	if info.NATSURL != "" {
		fmt.Fprintf(w, "  NATS                %s\n", info.NATSURL)
	}
	fmt.Fprintf(w, "  data directory      %s (edge.key, edge.json)\n", o.DataDir)
	if info.EdgeAddr == "" {
		fmt.Fprintf(w, "\nNo edge runs here (--target): agents reach this mesh through an edge on the same bus.\n\nCtrl-C stops the mesh.\n")
		return
	}
	self, dd := invokedAs(), dataDirFlag(o.DataDir)
	fmt.Fprintf(w, "\nIn another terminal:\n  %s agent echo%s\n  %s call --to echo --data hello%s\n\nCtrl-C stops the mesh.\n", self, dd, self, dd)
}
