package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/mxp-mesh/mesh/pkg/agent"
	"github.com/mxp-mesh/mesh/pkg/agent/llm"
	"github.com/mxp-mesh/mesh/pkg/agent/memory"
	"github.com/mxp-mesh/mesh/pkg/common/config"
	"github.com/mxp-mesh/mesh/pkg/common/health"
	"github.com/mxp-mesh/mesh/pkg/common/metrics"
	"github.com/mxp-mesh/mesh/pkg/common/security"
)

// Config is the agent's configuration: defaults, then the YAML file (-config), then
// MXP_ENTERPRISE_* environment variables, then flags. Keys tagged reload:"live" change
// on the fly when the file changes or on SIGHUP; the others need a restart.
type Config struct {
	Name     string `yaml:"name" flag:"name" usage:"the agent's name"`
	EdgeAddr string `yaml:"edge_addr" flag:"edge-addr" usage:"the edge's UDP address (default $MXP_EDGE, else .mxp/edge.json)"`
	EdgeKey  string `yaml:"edge_key" flag:"edge-key" usage:"the edge's public key, base64 (default $MXP_EDGE_KEY, else .mxp/edge.json)"`
	KeyFile  string `yaml:"key_file" flag:"key-file" usage:"this agent's private key (created on first run)"`
	// HTTP serves /metrics, /livez and /readyz. Empty disables it.
	HTTP string `yaml:"http" flag:"http" usage:"address of the metrics and health endpoints"`
	// Greeting is the system prompt the model gets, and is returned with every answer.
	Greeting string `yaml:"greeting" reload:"live"`
	// RatePerSecond and RateBurst bound the calls each caller may make (token bucket).
	RatePerSecond float64 `yaml:"rate_per_second" reload:"live"`
	RateBurst     int     `yaml:"rate_burst" reload:"live"`
	// CheckpointFile keeps the agent's state across restarts.
	CheckpointFile  string        `yaml:"checkpoint_file" flag:"checkpoint-file" usage:"state saved on shutdown, restored on start"`
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// Defaults are the documented defaults.
func Defaults() Config {
	return Config{Name: "enterprise-agent", KeyFile: ".mxp/enterprise-agent.key",
		HTTP: "127.0.0.1:9190", Greeting: "You are a helpful agent.", RatePerSecond: 10, RateBurst: 20,
		CheckpointFile: ".mxp/enterprise-agent.checkpoint.json", ShutdownTimeout: 10 * time.Second}
}

// Validate implements config.Validator.
func (c *Config) Validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, config.FieldError("name", "must not be empty"))
	}
	if c.RatePerSecond <= 0 || c.RateBurst < 1 {
		errs = append(errs, config.FieldError("rate_per_second", "rate must be positive and rate_burst at least 1"))
	}
	if c.CheckpointFile == "" {
		errs = append(errs, config.FieldError("checkpoint_file", "must not be empty"))
	}
	return errors.Join(errs...)
}

// State is what the agent checkpoints: its own counters plus (saved alongside) the
// conversation memory.
type State struct {
	Served int `json:"served"`
}

// AskRequest and AskResponse are the call payloads.
type AskRequest struct {
	Prompt string `json:"prompt"`
}

type AskResponse struct {
	Greeting string `json:"greeting"`
	Answer   string `json:"answer"`
	Served   int    `json:"served"` // calls served by this agent, across restarts
}

// App is the agent with its operational pieces: hot-reloaded config, per-caller rate
// limits, metrics and health endpoints, checkpoint and restore.
type App struct {
	log     *slog.Logger
	watcher *config.Watcher[Config]
	limiter *security.Limiter
	agent   *agent.Agent
	reg     *metrics.Registry
	checker *health.Checker
	server  *metrics.Server
	started bool // server bound

	mu     sync.Mutex
	state  State
	memory *memory.Ring[llm.Message]
}

// NewApp loads the configuration, restores the last checkpoint and builds the agent.
func NewApp(loader *config.Loader[Config], log *slog.Logger) (*App, error) {
	cfg, err := loader.Load()
	if err != nil {
		return nil, err
	}
	app := &App{log: log, memory: memory.NewRing[llm.Message](50)}
	app.watcher = config.NewWatcher(loader, cfg, log)
	app.limiter = security.NewLimiter(security.LimiterConfig{Rate: cfg.RatePerSecond, Burst: cfg.RateBurst})
	app.reg = metrics.NewRegistry("enterprise-agent")
	app.reg.SetConfigDigest(app.watcher.Digest())
	app.watcher.OnChange(func(_, cur *Config) { app.limiter.SetRate(cur.RatePerSecond, cur.RateBurst) })
	app.watcher.OnResult(func(_ config.ReloadResult, err error) {
		app.reg.ObserveReload(err == nil)
		app.reg.SetConfigDigest(app.watcher.Digest())
	})

	savedAt, err := memory.LoadCheckpoint(cfg.CheckpointFile, &app.state, app.memory)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		log.Info("no checkpoint: first start", "file", cfg.CheckpointFile)
	case err != nil:
		return nil, err
	default:
		log.Info("restored checkpoint", "file", cfg.CheckpointFile, "saved_at", savedAt, "served", app.state.Served)
	}

	app.agent, err = agent.New(agent.Config{Name: cfg.Name, Capabilities: []string{"chat.enterprise"}, Version: "1.0.0",
		EdgeAddr: cfg.EdgeAddr, EdgeKey: cfg.EdgeKey, KeyFile: cfg.KeyFile, ShutdownTimeout: cfg.ShutdownTimeout, Logger: log})
	if err != nil {
		return nil, err
	}
	app.agent.HandleCall(agent.JSONCall(app.ask))
	if err := app.reg.Register(app.agent.Collector()); err != nil {
		return nil, err
	}
	app.checker = health.NewChecker(app.watcher.Digest)
	app.checker.Add("agent", func(context.Context) error {
		if s := app.agent.State(); s != agent.StateActive {
			return fmt.Errorf("agent is %s", s)
		}
		return nil
	})
	if cfg.HTTP != "" {
		app.server = metrics.NewServer(metrics.ServerConfig{Addr: cfg.HTTP}, app.reg, app.checker)
	}
	return app, nil
}

// Agent is the running agent.
func (app *App) Agent() *agent.Agent { return app.agent }

// Watcher is the config watcher (to observe reloads).
func (app *App) Watcher() *config.Watcher[Config] { return app.watcher }

// HTTPAddr is the bound address of the metrics and health endpoints ("" when off).
func (app *App) HTTPAddr() string {
	if app.server == nil {
		return ""
	}
	return app.server.Addr()
}

// StartHTTP binds the metrics and health endpoints (Run calls it; tests call it first to
// learn the address).
func (app *App) StartHTTP() error {
	if app.server == nil || app.started {
		return nil
	}
	if err := app.server.Start(); err != nil {
		return err
	}
	app.started = true
	return nil
}

// ask answers one call with the mesh's model, within the caller's rate limit.
func (app *App) ask(ctx context.Context, req AskRequest) (AskResponse, error) {
	caller := "anonymous"
	if m, ok := agent.MetaFrom(ctx); ok && m.From != "" {
		caller = m.From
	}
	if !app.limiter.Allow(caller) {
		return AskResponse{}, agent.Errorf(agent.CodeRateLimited, "too many calls; slow down")
	}
	if strings.TrimSpace(req.Prompt) == "" {
		return AskResponse{}, agent.Errorf(agent.CodeInvalidArgument, "prompt is empty")
	}
	cfg := app.watcher.Current()
	app.mu.Lock()
	history := app.memory.Last(10)
	app.mu.Unlock()
	chat := llm.NewChatRequest("", append(history, llm.Message{Role: llm.RoleUser, Content: req.Prompt})...)
	chat.System = cfg.Greeting
	resp, err := llm.Mesh(app.agent).Chat(ctx, &chat)
	if err != nil {
		return AskResponse{}, err
	}
	app.mu.Lock()
	defer app.mu.Unlock()
	app.memory.Push(llm.Message{Role: llm.RoleUser, Content: req.Prompt}, llm.AssistantMessage(resp))
	app.state.Served++
	return AskResponse{Greeting: cfg.Greeting, Answer: resp.Text, Served: app.state.Served}, nil
}

// Run serves until ctx ends (SIGTERM in main) or the agent is retired: config reloads,
// HTTP endpoints and the agent; then it saves the checkpoint and stops the endpoints.
func (app *App) Run(ctx context.Context) error {
	if err := app.StartHTTP(); err != nil {
		return err
	}
	watchCtx, stopWatch := context.WithCancel(context.Background())
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		_ = app.watcher.Run(watchCtx)
	}()
	runErr := app.agent.Run(ctx)
	app.checker.SetShuttingDown()
	stopWatch()
	<-watchDone
	saveErr := app.Checkpoint()
	var httpErr error
	if app.server != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		httpErr = app.server.Shutdown(sctx)
		cancel()
	}
	return errors.Join(runErr, saveErr, httpErr)
}

// Checkpoint saves the state and the conversation memory atomically.
func (app *App) Checkpoint() error {
	app.mu.Lock()
	defer app.mu.Unlock()
	return memory.SaveCheckpoint(app.watcher.Current().CheckpointFile, app.state, app.memory)
}
