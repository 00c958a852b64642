package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/common/health"
	"github.com/mxp-mesh/mesh/pkg/common/lifecycle"
	mlog "github.com/mxp-mesh/mesh/pkg/common/log"
	"github.com/mxp-mesh/mesh/pkg/common/metrics"
	"github.com/mxp-mesh/mesh/pkg/common/service"
	"github.com/mxp-mesh/mesh/services/edge"
	"github.com/mxp-mesh/mesh/services/inference"
	"github.com/mxp-mesh/mesh/services/registry"
)

func init() {
	var (
		edgeAddr, compatAddr, httpAddr, natsAddr, dataDir, logLevel string
		compatRemote                                                bool
	)
	register(&command{
		Name:  "dev",
		Short: "run the whole mesh in one process (embedded NATS, edge, registry, inference)",
		Usage: "",
		Long: `dev runs every service of the mesh in one process, with no flags, API keys or network:
an embedded NATS server, the edge (secure UDP transport), the registry (memory store)
and the inference service (a deterministic built-in model; real providers turn on from
OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY, OLLAMA_HOST). /metrics, /livez,
/readyz and the services' HTTP APIs (/v1/agents, the OpenAI-compatible /v1/...) are
served on --http-addr.

The edge key is created in the data directory on the first run and reused after; dev
writes edge.json there so that the client commands (mxp agent, call, agents, bench)
find the mesh with no flags. Ctrl-C stops everything gracefully.

Examples:
  mxp dev
  mxp dev --compat-addr 127.0.0.1:9001      also accept the reference SDK's plaintext frames
  mxp dev --edge-addr 127.0.0.1:9100 --http-addr 127.0.0.1:8081 --data-dir /tmp/mesh`,
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&edgeAddr, "edge-addr", "127.0.0.1:9000", "UDP address of the edge's secure transport")
			fs.StringVar(&compatAddr, "compat-addr", "", "UDP address of the plaintext listener for the reference SDK (off when empty)")
			fs.BoolVar(&compatRemote, "compat-allow-remote", false, "allow the plaintext listener on a non-loopback address")
			fs.StringVar(&httpAddr, "http-addr", "127.0.0.1:"+defaultDevHTTPPort, "HTTP address of /metrics, /livez, /readyz and the service APIs")
			fs.StringVar(&natsAddr, "nats-addr", defaultNATSAddr, "TCP address of the embedded NATS server (\"off\": in-process only)")
			fs.StringVar(&dataDir, "data-dir", defaultDataDir, "data directory: the edge key and edge.json for the client commands")
			fs.StringVar(&logLevel, "log-level", "warn", "debug, info, warn or error (JSON logs on stderr)")
		},
		Run: func(ctx context.Context, env *cliEnv, args []string) error {
			if len(args) > 0 {
				return usagef("dev takes no arguments")
			}
			return runDev(ctx, env, devOptions{
				EdgeAddr: edgeAddr, CompatAddr: compatAddr, CompatAllowRemote: compatRemote,
				HTTPAddr: httpAddr, NATSAddr: natsAddr, DataDir: dataDir, LogLevel: logLevel,
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
	// ready, when set, receives the edge info once everything serves (tests).
	ready func(EdgeInfo)
}

// runDev wires every service the way each cmd/mxp-<name> does, on one bus and one HTTP
// server, and runs them until ctx ends.
func runDev(ctx context.Context, env *cliEnv, o devOptions) error {
	service.SetProcessGC()
	level := new(slog.LevelVar)
	lv, err := mlog.ParseLevel(o.LogLevel)
	if err != nil {
		return usagef("--log-level: %v", err)
	}
	level.Set(lv)
	// One JSON log stream; each service's lines carry its name.
	logger := slog.New(mlog.NewContextHandler(slog.NewJSONHandler(env.Stderr, &slog.HandlerOptions{Level: level})))
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}

	// The bus: embedded NATS, listening on loopback so other processes (a separate
	// mxp-<service>, the nats CLI) can join, or in-process only.
	embedded := bus.EmbeddedConfig{DontListen: o.NATSAddr == "off"}
	if !embedded.DontListen {
		host, port, err := net.SplitHostPort(o.NATSAddr)
		if err != nil {
			return usagef("--nats-addr: %v", err)
		}
		embedded.Host = host
		if embedded.Port, err = strconv.Atoi(port); err != nil {
			return usagef("--nats-addr: port %q", port)
		}
	}
	if !embedded.DontListen && o.NATSAddr == defaultNATSAddr && !tcpFree(o.NATSAddr) {
		// Another NATS owns the default port: the embedded one takes any free port (the
		// banner and edge.json name it).
		embedded.Port = 0
	}
	b, err := bus.Start(bus.Config{Embedded: embedded}, "mxp-dev", logger)
	if err != nil {
		return err
	}

	reg := metrics.NewRegistry("mxp-dev")
	checker := health.NewChecker(nil)
	srv := metrics.NewServer(metrics.ServerConfig{Addr: o.HTTPAddr, Pprof: true}, reg, checker)
	deps := func(name string) (service.Deps, error) {
		nc, err := b.NewConn("mxp-dev-" + name)
		if err != nil {
			return service.Deps{}, err
		}
		return service.Deps{Logger: logger.With(mlog.KeyService, name), Conn: nc, Metrics: reg, Health: checker, Router: srv.Router()}, nil
	}
	var runner lifecycle.Runner
	runner.Logger, runner.Health = logger, checker
	var conns []*service.Deps
	fail := func(err error) error {
		for _, d := range conns {
			d.Conn.Close()
		}
		b.Close()
		return err
	}

	// Registry.
	rdeps, err := deps("registry")
	if err != nil {
		return fail(err)
	}
	conns = append(conns, &rdeps)
	rcfg := registry.DefaultConfig()
	reg1, err := registry.New(rcfg, rdeps)
	if err != nil {
		return fail(fmt.Errorf("registry: %w", err))
	}
	runner.Add(reg1)

	// Inference, with its OpenAI-compatible API on the same HTTP server.
	ideps, err := deps("inference")
	if err != nil {
		return fail(err)
	}
	conns = append(conns, &ideps)
	icfg := inference.ApplyEnv(inference.Defaults(), os.LookupEnv)
	inf, err := inference.New(icfg, inference.Deps{Logger: ideps.Logger, Registerer: reg, Conn: ideps.Conn})
	if err != nil {
		return fail(fmt.Errorf("inference: %w", err))
	}
	inf.Routes(srv.Router())
	checker.Add("inference", func(context.Context) error {
		if rd := inf.Ready(); !rd.Ready {
			return fmt.Errorf("inference not ready")
		}
		return nil
	})
	runner.Add(lifecycle.Func{N: "inference", F: inf.Run})

	// Edge.
	edeps, err := deps("edge")
	if err != nil {
		return fail(err)
	}
	conns = append(conns, &edeps)
	ecfg := edge.Config{
		Addr: o.EdgeAddr, CompatAddr: o.CompatAddr, CompatAllowRemote: o.CompatAllowRemote,
		KeyFile: filepath.Join(o.DataDir, edgeKeyFile),
	}
	e, err := edge.New(ecfg, edge.Deps{Deps: edeps})
	if err != nil {
		return fail(fmt.Errorf("edge: %w", err))
	}
	runner.Add(e)

	if err := srv.Start(); err != nil {
		return fail(fmt.Errorf("http: %w", err))
	}
	runner.OnStop("service bus connections", func(ctx context.Context) error {
		for _, d := range conns {
			_ = bus.Drain(d.Conn, 5*time.Second)
		}
		return nil
	})
	runner.OnStop("http", srv.Shutdown)
	runner.OnStop("nats", func(context.Context) error { return b.Close() })

	addrs := e.Addrs()
	info := EdgeInfo{
		EdgeAddr: dialable(addrs["secure"]), PublicKey: e.PublicKey(),
		HTTPAddr: "http://" + dialable(srv.Addr()), PID: os.Getpid(), StartedAt: time.Now().UTC(),
	}
	if a := addrs["compat"]; a != "" {
		info.CompatAddr = dialable(a)
	}
	if !embedded.DontListen {
		info.NATSURL = b.Server.ClientURL()
	}
	if err := writeEdgeInfo(o.DataDir, info); err != nil {
		return fail(fmt.Errorf("writing %s: %w", edgeInfoFile, err))
	}
	printBanner(env, o, info)
	if o.ready != nil {
		go func() {
			waitReady(ctx, checker)
			o.ready(info)
		}()
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
	err = runner.Run(runCtx)
	_ = os.Remove(filepath.Join(o.DataDir, edgeInfoFile))
	return err
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

func printBanner(env *cliEnv, o devOptions, info EdgeInfo) {
	w := env.Stdout
	fmt.Fprintf(w, "MXP mesh running (mxp dev)\n")
	fmt.Fprintf(w, "  edge (secure UDP)   %s\n", info.EdgeAddr)
	fmt.Fprintf(w, "  edge public key     %s\n", info.PublicKey)
	if info.CompatAddr != "" {
		fmt.Fprintf(w, "  plaintext listener  %s (reference SDK, unencrypted)\n", info.CompatAddr)
	}
	fmt.Fprintf(w, "  HTTP                %s  (/metrics /livez /readyz /v1/agents /v1/chat/completions)\n", info.HTTPAddr)
	if info.NATSURL != "" {
		fmt.Fprintf(w, "  NATS                %s\n", info.NATSURL)
	}
	fmt.Fprintf(w, "  data directory      %s (edge.key, edge.json)\n", o.DataDir)
	fmt.Fprintf(w, "\nIn another terminal:\n  mxp agent echo\n  mxp call --to echo --data hello\n\nCtrl-C stops the mesh.\n")
}
